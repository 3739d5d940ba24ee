//! The value grammars of directive arguments, as nginx reads them.
//!
//! - flags: `on` | `off`, in any letter case;
//! - numbers: decimal digits only;
//! - sizes: a number with an optional `k`/`K` or `m`/`M` suffix; offsets also
//!   take `g`/`G`;
//! - times: a run of number-unit pairs in falling order (`1y 2M 3w 4d 5h 6m
//!   7s 8ms`, spaces between pairs optional), each unit at most once; a
//!   number without a unit means seconds.
//!
//! As in nginx, every value must fit in a signed 64-bit integer (nginx keeps
//! them in `ngx_int_t`/`off_t`), so anything above `i64::MAX` is rejected even
//! though the results are returned unsigned. Nothing is trimmed: `" 8k"` and
//! `"+1"` are errors, as they are for nginx.

use std::time::Duration;

/// The largest value nginx can hold in its signed integer types.
const MAX_VALUE: u64 = i64::MAX as u64;

/// Parses `on` / `off` (case-insensitive, as nginx's flag slot).
pub fn parse_flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("on") {
        Some(true)
    } else if s.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// Parses a non-empty run of decimal digits no larger than `i64::MAX`.
pub fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0')).filter(|&v| v <= MAX_VALUE)
    })
}

/// Parses a size in bytes: `1024`, `8k`/`8K` (KiB), `1m`/`1M` (MiB).
pub fn parse_size(s: &str) -> Option<u64> {
    scaled(s, &[(b'k', 1 << 10), (b'm', 1 << 20)])
}

/// Parses an offset in bytes: a size that may also use `g`/`G` (GiB).
pub fn parse_offset(s: &str) -> Option<u64> {
    scaled(s, &[(b'k', 1 << 10), (b'm', 1 << 20), (b'g', 1 << 30)])
}

/// A number with an optional one-letter suffix (matched case-insensitively)
/// that multiplies it.
fn scaled(s: &str, units: &[(u8, u64)]) -> Option<u64> {
    let last = s.bytes().last()?.to_ascii_lowercase();
    let (digits, scale) = match units.iter().find(|(u, _)| *u == last) {
        Some(&(_, scale)) => (&s[..s.len() - 1], scale),
        None => (s, 1),
    };
    parse_number(digits)?.checked_mul(scale).filter(|&v| v <= MAX_VALUE)
}

/// Parses a time: `500ms`, `30s`, `5m`, `1h`, `1d`, `1w`, `1M` (30 days),
/// `1y` (365 days), or compounds such as `1h 30m` / `1h30m`; a bare number
/// means seconds. Accepts every unit, `y` through `ms`; directives that must
/// follow nginx exactly use [`parse_time_ms`] or [`parse_time_sec`].
pub fn parse_time(s: &str) -> Option<Duration> {
    parse_time_in(s, TimeMode::ANY).map(Duration::from_millis)
}

/// nginx's millisecond time grammar (`ngx_conf_set_msec_slot`): the result
/// in milliseconds; `ms` is allowed, `y` and `M` are not.
pub fn parse_time_ms(s: &str) -> Option<u64> {
    parse_time_in(s, TimeMode::MSEC)
}

/// nginx's second time grammar (`ngx_conf_set_sec_slot`): the result in
/// seconds; every unit but `ms` is allowed.
pub fn parse_time_sec(s: &str) -> Option<u64> {
    parse_time_in(s, TimeMode::SEC)
}

/// Which units a time may use and what the result counts.
#[derive(Clone, Copy)]
struct TimeMode {
    /// `y` and `M` allowed (nginx's millisecond slots refuse them).
    long_units: bool,
    /// `ms` allowed (nginx's second slots refuse it).
    millis: bool,
    /// The result counts milliseconds (else seconds).
    in_millis: bool,
}

impl TimeMode {
    const ANY: TimeMode = TimeMode { long_units: true, millis: true, in_millis: true };
    const MSEC: TimeMode = TimeMode { long_units: false, millis: true, in_millis: true };
    const SEC: TimeMode = TimeMode { long_units: true, millis: false, in_millis: false };
}

/// The units in the order they must appear, with their length in
/// milliseconds. `Bare` is a number ended by a space: it counts seconds, and
/// after it only a final bare number may follow (nginx's rule).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Milli,
    Bare,
}

impl Unit {
    fn millis(self) -> u64 {
        const SEC: u64 = 1000;
        match self {
            Unit::Year => 365 * 86_400 * SEC,
            Unit::Month => 30 * 86_400 * SEC,
            Unit::Week => 7 * 86_400 * SEC,
            Unit::Day => 86_400 * SEC,
            Unit::Hour => 3600 * SEC,
            Unit::Minute => 60 * SEC,
            Unit::Second | Unit::Bare => SEC,
            Unit::Milli => 1,
        }
    }
}

/// Reads the unit at the start of `rest`, returning it and its length.
fn unit_at(rest: &[u8]) -> Option<(Unit, usize)> {
    let unit = match rest.first()? {
        b'y' => Unit::Year,
        b'M' => Unit::Month,
        b'w' => Unit::Week,
        b'd' => Unit::Day,
        b'h' => Unit::Hour,
        b'm' if rest.get(1) == Some(&b's') => return Some((Unit::Milli, 2)),
        b'm' => Unit::Minute,
        b's' => Unit::Second,
        b' ' => Unit::Bare,
        _ => return None,
    };
    Some((unit, 1))
}

fn parse_time_in(s: &str, mode: TimeMode) -> Option<u64> {
    let bytes = s.as_bytes();
    // In milliseconds mode nginx starts as if a month had been seen, which
    // is what refuses `y` and `M` there.
    let mut last: Option<Unit> = if mode.long_units { None } else { Some(Unit::Month) };
    let (mut value, mut total, mut any_digit, mut i) = (0u64, 0u64, false, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            if value > MAX_VALUE {
                return None;
            }
            any_digit = true;
            i += 1;
            continue;
        }
        let (unit, len) = unit_at(&bytes[i..])?;
        // Units fall strictly; a bare number may not follow seconds or ms.
        let out_of_order = match unit {
            Unit::Year => last.is_some(),
            Unit::Bare => last >= Some(Unit::Second),
            _ => last >= Some(unit),
        };
        if out_of_order || (unit == Unit::Milli && !mode.millis) {
            return None;
        }
        last = Some(unit);
        total = add_part(total, value, unit.millis(), mode)?;
        value = 0;
        i += len;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !any_digit {
        return None;
    }
    add_part(total, value, Unit::Second.millis(), mode)
}

/// Adds `value` units of `unit_ms` milliseconds to `total`, counted in the
/// mode's unit; fails past `i64::MAX`. Milliseconds in seconds mode never
/// get here (the grammar refuses them).
fn add_part(total: u64, value: u64, unit_ms: u64, mode: TimeMode) -> Option<u64> {
    let scale = if mode.in_millis { unit_ms } else { unit_ms / 1000 };
    let part = value.checked_mul(scale)?;
    total.checked_add(part).filter(|&t| t <= MAX_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(parse_flag("on"), Some(true));
        assert_eq!(parse_flag("OFF"), Some(false));
        assert_eq!(parse_flag("On"), Some(true));
        for bad in ["", "yes", "1", "onn", " on", "of"] {
            assert_eq!(parse_flag(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("0042"), Some(42));
        assert_eq!(parse_number("9223372036854775807"), Some(i64::MAX as u64));
        for bad in ["", "-1", "+1", " 1", "1 ", "1.5", "1k", "9223372036854775808", "99999999999999999999"] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("8K"), Some(8192));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("8796093022207m"), Some(8_796_093_022_207 << 20));
        for bad in
            ["", "k", "1g", "1G", "-1", "+1k", "1kb", "1 k", " 1", "1.5k", "8796093022208m", "9223372036854775807k"]
        {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("1g"), Some(1 << 30));
        assert_eq!(parse_offset("3G"), Some(3 << 30));
        assert_eq!(parse_offset("10m"), Some(10 << 20));
        assert_eq!(parse_offset("5"), Some(5));
        for bad in ["", "g", "1t", "1gb", "-1g", "8589934592g"] {
            assert_eq!(parse_offset(bad), None, "{bad:?}");
        }
    }

    fn ms(s: &str) -> Option<u128> {
        parse_time(s).map(|d| d.as_millis())
    }

    #[test]
    fn times_single_units() {
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("30"), Some(30_000));
        assert_eq!(ms("5m"), Some(300_000));
        assert_eq!(ms("1h"), Some(3_600_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms("1w"), Some(7 * 86_400_000));
        assert_eq!(ms("1M"), Some(30 * 86_400_000));
        assert_eq!(ms("1y"), Some(365 * 86_400_000));
        assert_eq!(ms("0"), Some(0));
    }

    #[test]
    fn times_compound() {
        assert_eq!(ms("1h 30m"), Some(5_400_000));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1h  30m  5"), Some(5_405_000));
        assert_eq!(ms("1s 500ms"), Some(1_500));
        assert_eq!(ms("1y1M1w1d1h1m1s1ms"), Some(((365 + 30 + 7 + 1) * 86_400 + 3661) * 1000 + 1));
        // nginx quirks kept: a number ended by a space counts seconds, and a
        // unit letter with no number before it adds nothing.
        assert_eq!(ms("1 2"), Some(3_000));
        assert_eq!(ms("5 "), Some(5_000));
        assert_eq!(ms("1h m"), Some(3_600_000));
        assert_eq!(ms("1s 2"), Some(3_000));
        assert_eq!(ms("1ms 2"), Some(2_001));
        assert_eq!(ms("5s "), Some(5_000));
    }

    #[test]
    fn times_rejected() {
        for bad in [
            "",
            " ",
            "s",
            "ms",
            "-1s",
            "+1s",
            "1x",
            "1S",
            "1H",
            "1.5s",
            "1hh",
            "1h1h",
            "30m1h",
            "1s1m",
            "1ms1s",
            "1 2 3",
            "1 2s",
            "1y1y",
            "1M1y",
            "9223372036854775808",
        ] {
            assert_eq!(ms(bad), None, "{bad:?}");
        }
        // Overflow of the millisecond total.
        assert_eq!(ms("106751991167y"), None);
        assert_eq!(ms("9223372036854775807ms"), Some(i64::MAX as u128));
        assert_eq!(ms("9223372036854775807ms 1"), None);
    }

    #[test]
    fn nginx_msec_and_sec_modes() {
        assert_eq!(parse_time_ms("500ms"), Some(500));
        assert_eq!(parse_time_ms("1d 2h"), Some(26 * 3_600_000));
        assert_eq!(parse_time_ms("60"), Some(60_000));
        assert_eq!(parse_time_ms("1y"), None);
        assert_eq!(parse_time_ms("1M"), None);
        assert_eq!(parse_time_sec("1y"), Some(365 * 86_400));
        assert_eq!(parse_time_sec("1M 1d"), Some(31 * 86_400));
        assert_eq!(parse_time_sec("90"), Some(90));
        assert_eq!(parse_time_sec("500ms"), None);
        assert_eq!(parse_time_sec("9223372036854775807"), Some(i64::MAX as u64));
        assert_eq!(parse_time_sec("9223372036854775807s 1"), None);
        assert_eq!(parse_time_ms("9223372036854775807"), None);
    }
}
