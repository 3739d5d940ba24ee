//! Dates as sluice writes and reads them: the HTTP `Date` form, the
//! error-log stamp, `$time_local` and `$time_iso8601`.
//!
//! Formatting a date costs far more than reading the clock, and a busy
//! worker writes the same `Date:` header thousands of times a second, so
//! [`CachedClock`] (and [`with_cached_http_date`], its thread-local form)
//! re-formats at most once per second, as nginx's `ngx_time_update` does.
//!
//! Local-time forms use the process's time zone (`TZ`, `/etc/localtime`)
//! through chrono; the HTTP forms are always GMT.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, Datelike, Local, Offset, TimeZone, Timelike, Utc};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Formats `t` as an RFC 9110 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    if let Some(b) = http_date_bytes(t) {
        // Only ASCII goes into the fixed form.
        return String::from_utf8_lossy(&b).into_owned();
    }
    let dt: DateTime<Utc> = t.into();
    let mut s = String::with_capacity(29);
    // Writing into a String cannot fail.
    let _ = write!(
        s,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[dt.weekday().num_days_from_monday() as usize],
        dt.day(),
        MONTHS[dt.month0() as usize],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    s
}

/// [`http_date`] as a fixed 29-byte array, written digit by digit with no
/// allocation or formatting machinery (a static file's `Last-Modified` is
/// written on every response); `None` for a year outside 0..=9999, which
/// does not fit the fixed form.
pub fn http_date_bytes(t: SystemTime) -> Option<[u8; 29]> {
    // The last date made on this thread: a file served over and over has
    // one `Last-Modified` (whole seconds, as file times and parsed dates
    // are), and the calendar conversion costs far more than this compare.
    thread_local! {
        static RECENT: std::cell::Cell<Option<(SystemTime, [u8; 29])>> = const { std::cell::Cell::new(None) };
    }
    if let Some((at, date)) = RECENT.with(|c| c.get()) {
        if at == t {
            return Some(date);
        }
    }
    let date = format_http_date(t)?;
    RECENT.with(|c| c.set(Some((t, date))));
    Some(date)
}

fn format_http_date(t: SystemTime) -> Option<[u8; 29]> {
    let dt: DateTime<Utc> = t.into();
    let year = u32::try_from(dt.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    let two = |out: &mut [u8], n: u32| {
        out[0] = b'0' + (n / 10) as u8;
        out[1] = b'0' + (n % 10) as u8;
    };
    out[0..3].copy_from_slice(WEEKDAYS[dt.weekday().num_days_from_monday() as usize].as_bytes());
    two(&mut out[5..7], dt.day());
    out[8..11].copy_from_slice(MONTHS[dt.month0() as usize].as_bytes());
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], dt.hour());
    two(&mut out[20..22], dt.minute());
    two(&mut out[23..25], dt.second());
    Some(out)
}

/// The error log's stamp in local time: `2026/11/22 00:30:00`.
pub fn log_time_local(t: SystemTime) -> String {
    fmt_log_time(&DateTime::<Local>::from(t))
}

/// `$time_local`, the access log's "common log format" stamp in local time:
/// `22/Nov/2026:00:30:00 +0000`.
pub fn time_local(t: SystemTime) -> String {
    fmt_time_local(&DateTime::<Local>::from(t))
}

/// `$time_iso8601` in local time: `2026-11-22T00:30:00+00:00`.
pub fn time_iso8601(t: SystemTime) -> String {
    fmt_time_iso8601(&DateTime::<Local>::from(t))
}

fn fmt_log_time<Tz: TimeZone>(dt: &DateTime<Tz>) -> String {
    format!("{:04}/{:02}/{:02} {:02}:{:02}:{:02}", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second())
}

fn fmt_time_local<Tz: TimeZone>(dt: &DateTime<Tz>) -> String {
    let (sign, hours, minutes) = split_offset(dt);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} {}{:02}{:02}",
        dt.day(),
        MONTHS[dt.month0() as usize],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        sign,
        hours,
        minutes
    )
}

fn fmt_time_iso8601<Tz: TimeZone>(dt: &DateTime<Tz>) -> String {
    let (sign, hours, minutes) = split_offset(dt);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        sign,
        hours,
        minutes
    )
}

/// The UTC offset of `dt` as (sign, hours, minutes); UTC itself is `+`.
fn split_offset<Tz: TimeZone>(dt: &DateTime<Tz>) -> (char, i32, i32) {
    let secs = dt.offset().fix().local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let minutes = secs.abs() / 60;
    (sign, minutes / 60, minutes % 60)
}

/// Parses an HTTP date in any of the three forms HTTP/1.1 recipients must
/// accept (RFC 9110 §5.6.7), leniently in the same places nginx's
/// `ngx_parse_http_time` is:
///
/// * IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`,
/// * RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (years 70–99 are 19xx, else 20xx),
/// * asctime `Sun Nov  6 08:49:37 1994`.
///
/// The weekday is skipped unchecked and anything after the time (or after
/// the year, for asctime) is ignored, as nginx does. Unlike nginx, month
/// names must be spelt exactly and day 0 is refused.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    // The weekday runs up to ',' (IMF-fixdate, RFC 850) or ' ' (asctime).
    let stop = b.iter().position(|&c| c == b',' || c == b' ')?;
    let asctime = b[stop] == b' ';
    let mut p = Cursor { b, i: stop + 1 };
    p.skip_spaces();
    let (year, month, day) = if asctime {
        let month = p.month()?;
        p.expect(b' ')?;
        if p.peek() == Some(b' ') {
            p.i += 1; // single-digit day, padded: "Nov  6"
        }
        let day = match p.digits(2) {
            Some(d) => d,
            None => p.digits(1)?,
        };
        (None, month, day)
    } else {
        let day = p.digits(2)?;
        let sep = p.next()?;
        let month = match sep {
            b' ' | b'-' => p.month()?,
            _ => return None,
        };
        p.expect(sep)?;
        let year = if sep == b' ' {
            p.digits(4)?
        } else {
            let yy = p.digits(2)?;
            yy + if yy < 70 { 2000 } else { 1900 }
        };
        (Some(year), month, day)
    };
    p.expect(b' ')?;
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let min = p.digits(2)?;
    p.expect(b':')?;
    let sec = p.digits(2)?;
    let year = match year {
        Some(y) => y,
        None => {
            p.expect(b' ')?;
            p.digits(4)?
        }
    };
    // chrono refuses what is not a real date or time (31 Nov, 29 Feb 1900,
    // 24:00:00); nginx refuses the same.
    let secs =
        chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_opt(hour, min, sec)?.and_utc().timestamp();
    Some(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    })
}

/// A read position in a date being parsed; every step returns `None` on a
/// mismatch so the parser can use `?` throughout.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let run = self.b.get(self.i..self.i + n)?;
        if !run.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(run.iter().fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
    }

    /// A three-letter month name, as 1–12.
    fn month(&mut self) -> Option<u32> {
        let name = self.b.get(self.i..self.i + 3)?;
        let m = MONTHS.iter().position(|m| m.as_bytes() == name)?;
        self.i += 3;
        Some(m as u32 + 1)
    }
}

/// Whole seconds since the epoch (0 for times before it, which a clock
/// reading never is in practice).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A clock that keeps the HTTP `Date` value of the current second, so a
/// worker formats it at most once per second however many responses it
/// sends. One per thread (it is not shared); see [`with_cached_http_date`]
/// for a ready-made thread-local one.
#[derive(Debug, Clone)]
pub struct CachedClock {
    /// The last time the clock was moved to: a busy worker moves it to the
    /// same event-cycle time for every response of a cycle, and comparing
    /// it is cheaper than working out its second.
    at: SystemTime,
    sec: u64,
    http_date: Bytes,
}

impl Default for CachedClock {
    fn default() -> Self {
        Self::new()
    }
}

impl CachedClock {
    /// A clock primed with the current second.
    pub fn new() -> CachedClock {
        let now = SystemTime::now();
        CachedClock { at: now, sec: unix_secs(now), http_date: Bytes::from(http_date(now)) }
    }

    /// Reads the system clock (a vDSO call, not a syscall, on Linux) and
    /// refreshes the cached date if the second has changed.
    pub fn now(&mut self) -> SystemTime {
        let now = SystemTime::now();
        self.set(now);
        now
    }

    /// Moves the clock to `now` (a time read elsewhere, such as the event
    /// cycle's), re-formatting the date if the second has changed.
    pub fn set(&mut self, now: SystemTime) {
        if now == self.at {
            return;
        }
        self.at = now;
        let sec = unix_secs(now);
        if sec != self.sec {
            self.sec = sec;
            self.http_date = Bytes::from(http_date(now));
        }
    }

    /// The current second as an IMF-fixdate, shared by reference count.
    pub fn http_date_now(&mut self) -> Bytes {
        self.now();
        self.http_date.clone()
    }
}

thread_local! {
    static CLOCK: RefCell<CachedClock> = RefCell::new(CachedClock::new());
}

/// Runs `f` with the current second's IMF-fixdate from this thread's
/// [`CachedClock`], without copying it. The time is the event cycle's
/// ([`crate::event::wall_now`]), so a busy worker reads the clock once per
/// cycle, not once per response.
pub fn with_cached_http_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        clock.set(crate::event::wall_now());
        f(&clock.http_date)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 2026-11-22 00:30:00 UTC, a Sunday.
    const T: u64 = 1_795_307_400;

    #[test]
    fn http_date_is_imf_fixdate() {
        assert_eq!(http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(at(T)), "Sun, 22 Nov 2026 00:30:00 GMT");
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        // Past 9999 the fixed form does not fit: the year is written out.
        assert_eq!(http_date_bytes(at(253_402_300_800)), None);
        assert_eq!(http_date(at(253_402_300_800)), "Sat, 01 Jan 10000 00:00:00 GMT");
        assert_eq!(&http_date_bytes(at(253_402_300_799)).unwrap(), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn the_recent_date_is_reused_only_for_the_same_time() {
        let fixed = |t: SystemTime| String::from_utf8(http_date_bytes(t).unwrap().to_vec()).unwrap();
        for t in [at(T), at(T), at(T) + Duration::from_millis(999), at(T + 1), at(T), at(0)] {
            assert_eq!(fixed(t), http_date(t), "{t:?}");
        }
        // Before the epoch a fraction belongs to the second below it.
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(fixed(before), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(fixed(UNIX_EPOCH - Duration::from_secs(1)), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(fixed(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn local_forms_with_fixed_offsets() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let dt = DateTime::<Utc>::from(at(T)).with_timezone(&utc);
        assert_eq!(fmt_log_time(&dt), "2026/11/22 00:30:00");
        assert_eq!(fmt_time_local(&dt), "22/Nov/2026:00:30:00 +0000");
        assert_eq!(fmt_time_iso8601(&dt), "2026-11-22T00:30:00+00:00");

        let west = FixedOffset::west_opt(3 * 3600 + 30 * 60).unwrap();
        let dt = DateTime::<Utc>::from(at(T)).with_timezone(&west);
        assert_eq!(fmt_log_time(&dt), "2026/11/21 21:00:00");
        assert_eq!(fmt_time_local(&dt), "21/Nov/2026:21:00:00 -0330");
        assert_eq!(fmt_time_iso8601(&dt), "2026-11-21T21:00:00-03:30");

        let east = FixedOffset::east_opt(5 * 3600 + 45 * 60).unwrap();
        let dt = DateTime::<Utc>::from(at(T)).with_timezone(&east);
        assert_eq!(fmt_time_local(&dt), "22/Nov/2026:06:15:00 +0545");
        assert_eq!(fmt_time_iso8601(&dt), "2026-11-22T06:15:00+05:45");
    }

    fn shape(s: &str) -> String {
        s.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect()
    }

    #[test]
    fn local_forms_have_the_right_shape() {
        assert_eq!(shape(&log_time_local(at(T))), "9999/99/99 99:99:99");
        let tl = shape(&time_local(at(T)));
        assert!(tl.starts_with("99/"), "{tl}");
        assert!(tl.ends_with(":99:99:99 +9999") || tl.ends_with(":99:99:99 -9999"), "{tl}");
        assert_eq!(tl.len(), "22/Nov/2026:00:30:00 +0000".len());
        let iso = shape(&time_iso8601(at(T)));
        assert!(iso.starts_with("9999-99-99T99:99:99"), "{iso}");
        assert!(iso.ends_with("+99:99") || iso.ends_with("-99:99"), "{iso}");
    }

    #[test]
    fn parses_the_three_http_forms() {
        let want = Some(at(784_111_777));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date("Sun Nov 06 08:49:37 1994"), want);
    }

    #[test]
    fn parse_is_lenient_where_nginx_is() {
        let want = Some(at(784_111_777));
        // Weekday unchecked, extra spaces after the comma, trailing text ignored.
        assert_eq!(parse_http_date("Xyz,   06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37"), want);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT; length=12"), want);
        // RFC 850 two-digit years pivot at 70.
        assert_eq!(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), Some(at(0)));
        assert_eq!(parse_http_date("Sunday, 22-Nov-26 00:30:00 GMT"), Some(at(T)));
    }

    #[test]
    fn parse_round_trips_http_date() {
        for secs in [0, 1, 951_782_400, T, 4_102_444_800, 253_402_300_799] {
            assert_eq!(parse_http_date(&http_date(at(secs))), Some(at(secs)));
        }
    }

    #[test]
    fn parse_handles_dates_before_the_epoch() {
        assert_eq!(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"), Some(UNIX_EPOCH - Duration::from_secs(1)));
    }

    #[test]
    fn parse_rejects_bad_dates() {
        for bad in [
            "",
            "Sun",
            "Sun, 06 Nov 1994",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nvv 1994 08:49:37 GMT",
            "Sun, 06-Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:60 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 1900 00:00:00 GMT",
            "Sun Nov  6 08:49:37",
            "Sun Nov  6 08:49:37 94",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
        assert!(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").is_some());
    }

    #[test]
    fn cached_clock_matches_the_clock() {
        let mut clock = CachedClock::new();
        let date = clock.http_date_now();
        let parsed = parse_http_date(std::str::from_utf8(&date).unwrap()).unwrap();
        let now = SystemTime::now();
        let age = now.duration_since(parsed).unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
        assert_eq!(date.len(), 29);
    }

    #[test]
    fn thread_local_date_is_imf_fixdate() {
        let text = with_cached_http_date(|d| String::from_utf8(d.to_vec()).unwrap());
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(parse_http_date(&text).is_some(), "{text}");
    }
}
