//! placeholder: value parsers (being written).
use std::time::Duration;
/// `on` / `off`.
pub fn parse_flag(s: &str) -> Option<bool> {
    match s {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}
/// A number.
pub fn parse_number(s: &str) -> Option<u64> {
    s.parse().ok()
}
/// A size.
pub fn parse_size(s: &str) -> Option<u64> {
    let (n, m) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    n.parse::<u64>().ok()?.checked_mul(m)
}
/// An offset.
pub fn parse_offset(s: &str) -> Option<u64> {
    parse_size(s)
}
/// A time.
pub fn parse_time(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    s.trim_end_matches('s')
        .parse()
        .ok()
        .map(Duration::from_secs)
}
