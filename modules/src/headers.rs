//! The headers module: `add_header`, `add_trailer` and `expires`.
//!
//! ```text
//! add_header X-Frame-Options DENY;
//! add_header Cache-Control "max-age=$arg_age" always;
//! add_trailer X-Checksum $request_id;
//! expires 1h;             # or: epoch, max, off, -1, modified 1d, @15h30m, $var
//! ```
//!
//! A header filter. Headers are added to responses with status 200, 201,
//! 204, 206, 301, 302, 303, 304, 307 or 308, or to every response with
//! `always`; an empty value adds nothing, except that `ETag` and
//! `Last-Modified` replace the response's own and an empty one removes it
//! (as nginx does). A level with its own `add_header` lines does not
//! inherit the outer level's (as in nginx); the same holds for
//! `add_trailer`, independently. Trailers go out after a chunked body.
//!
//! `expires` sets `Expires` and `Cache-Control` (replacing ones already
//! there) on the same statuses, never with `always`: `epoch` (1 January
//! 1970, `no-cache`), `max` (31 December 2037, ten years), a time from now
//! (`max-age=N`), `modified TIME` from the response's `Last-Modified` (from
//! now when there is none), `@TIME` the next such time of day (local time);
//! a negative time gives `Cache-Control: no-cache`. With variables the value
//! is parsed per request, and a bad one sets nothing. The module keeps no
//! per-request state.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::Chain;
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextBody,
    NextHeader, PostConf, Request,
};

/// One `add_header` / `add_trailer` line.
#[derive(Clone)]
struct Entry {
    name: bytes::Bytes,
    value: ComplexValue,
    always: bool,
}

/// A resolved `expires` value; times in seconds, negative allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expires {
    Off,
    Epoch,
    Max,
    /// From the time of the request.
    Access(i64),
    /// From `Last-Modified` (from now when the response has none).
    Modified(i64),
    /// The next such time of day (seconds after local midnight).
    Daily(i64),
}

/// The `expires` directive: a value fixed at configuration time, or text
/// with variables parsed per request.
#[derive(Clone)]
enum ExpiresConf {
    Fixed(Expires),
    Var { modified: bool, value: ComplexValue },
}

/// Location conf.
#[derive(Default)]
pub struct HeadersLocConf {
    // Shared, so the filter takes them with a reference count per response.
    headers: Option<Arc<Vec<Entry>>>,
    trailers: Option<Arc<Vec<Entry>>>,
    expires: Option<ExpiresConf>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), HeadersLocConf> = ConfKey::new();

/// The headers module.
#[derive(Debug)]
pub struct HeadersModule;

fn parse_entry(cx: &mut HttpConfCx, stmt: &Statement) -> Result<Entry, SetError> {
    let always = match stmt.args.get(2).map(|a| a.as_str()) {
        None => false,
        Some("always") => true,
        Some(other) => return Err(format!("invalid value \"{other}\"").into()),
    };
    Ok(Entry { name: bytes::Bytes::from(stmt.arg(0).to_string()), value: cx.compile(stmt.arg(1))?, always })
}

fn status_gets_headers(status: u16) -> bool {
    matches!(status, 200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308)
}

/// Parses an `expires` time as nginx does: `epoch`, `max`, `off` (not after
/// `modified`), `@TIME` (not after `modified`), `[+|-]TIME`.
fn parse_expires(text: &str, modified: bool) -> Result<Expires, &'static str> {
    if !modified {
        match text {
            "epoch" => return Ok(Expires::Epoch),
            "max" => return Ok(Expires::Max),
            "off" => return Ok(Expires::Off),
            _ => {}
        }
    }
    let (daily, negative, rest) = match text.as_bytes().first() {
        Some(b'@') if modified => return Err("daily time cannot be used with \"modified\" parameter"),
        Some(b'@') => (true, false, &text[1..]),
        Some(b'+') => (false, false, &text[1..]),
        Some(b'-') => (false, true, &text[1..]),
        _ => (false, false, text),
    };
    let secs = sluice_core::conf::value::parse_time_sec(rest).ok_or("invalid value")?;
    let secs = i64::try_from(secs).map_err(|_| "invalid value")?;
    if daily && secs > 24 * 60 * 60 {
        return Err("daily time value must be less than 24 hours");
    }
    let secs = if negative { -secs } else { secs };
    Ok(if daily {
        Expires::Daily(secs)
    } else if modified {
        Expires::Modified(secs)
    } else {
        Expires::Access(secs)
    })
}

/// The `expires` setter.
fn set_expires(cx: &mut HttpConfCx, c: &mut HeadersLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.expires.is_some() {
        return Err(duplicate(stmt).into());
    }
    let modified = stmt.args.len() == 2;
    if modified && stmt.arg(0) != "modified" {
        return Err(format!("\"{}\" directive invalid value", stmt.name).into());
    }
    let text = stmt.arg(stmt.args.len() - 1);
    let value = cx.compile(text)?;
    c.expires = Some(if value.has_variables() {
        ExpiresConf::Var { modified, value }
    } else {
        let e = parse_expires(text, modified).map_err(|m| format!("\"{}\" directive {}", stmt.name, m))?;
        ExpiresConf::Fixed(e)
    });
    Ok(())
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix_secs(s: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::from_secs(s.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

/// The next local time of day `secs` after midnight that is later than
/// `now` (nginx's `ngx_next_time`).
fn next_time(now: i64, secs: i64) -> i64 {
    use chrono::{Local, NaiveTime, TimeZone};
    let Some(now_local) = Local.timestamp_opt(now, 0).earliest() else {
        return now + secs;
    };
    let at = |days: i64| {
        let day = now_local.date_naive().and_time(NaiveTime::MIN)
            + chrono::Duration::days(days)
            + chrono::Duration::seconds(secs);
        Local.from_local_datetime(&day).earliest().map(|t| t.timestamp())
    };
    match at(0) {
        Some(t) if t > now => t,
        _ => at(1).unwrap_or(now + secs),
    }
}

/// The `Expires` and `Cache-Control` values for a resolved `expires`;
/// `conf_negative` is nginx's check of the configured (not variable) time.
fn expires_values(e: Expires, now: i64, last_modified: Option<i64>, conf_negative: bool) -> Option<(Bytes, Bytes)> {
    let (expires_at, max_age, time) = match e {
        Expires::Off => return None,
        Expires::Epoch => {
            return Some((Bytes::from_static(b"Thu, 01 Jan 1970 00:00:01 GMT"), Bytes::from_static(b"no-cache")))
        }
        Expires::Max => {
            return Some((
                Bytes::from_static(b"Thu, 31 Dec 2037 23:55:55 GMT"),
                Bytes::from_static(b"max-age=315360000"),
            ))
        }
        Expires::Access(0) | Expires::Modified(0) => (now, 0, 0),
        Expires::Daily(t) => {
            let at = next_time(now, t);
            (at, at - now, t)
        }
        Expires::Access(t) => (now + t, t, t),
        Expires::Modified(t) => match last_modified {
            Some(lm) => (lm + t, lm + t - now, t),
            None => (now + t, t, t),
        },
    };
    let date = Bytes::from(sluice_core::time::http_date(from_unix_secs(expires_at)));
    let cc = if (conf_negative && time < 0) || max_age < 0 {
        Bytes::from_static(b"no-cache")
    } else {
        Bytes::from(format!("max-age={max_age}"))
    };
    Some((date, cc))
}

/// One `add_header` line's effect.
fn add_header(r: &mut Request, name: &Bytes, value: Bytes) {
    if name.eq_ignore_ascii_case(b"etag") {
        r.headers_out.set(name.clone(), value);
    } else if name.eq_ignore_ascii_case(b"last-modified") {
        // Kept as a time when it parses (the header writer prints it).
        let parsed = std::str::from_utf8(&value).ok().and_then(sluice_core::time::parse_http_date);
        r.headers_out.last_modified = parsed;
        let raw = if parsed.is_some() { Bytes::new() } else { value };
        r.headers_out.set(name.clone(), raw);
    } else if !value.is_empty() {
        r.headers_out.add(name.clone(), value);
    }
}

/// Applies `expires` to a response with a status that gets headers.
fn apply_expires(r: &mut Request, conf: &ExpiresConf) {
    let (e, conf_negative) = match conf {
        ExpiresConf::Fixed(e) => (*e, true),
        ExpiresConf::Var { modified, value } => {
            match parse_expires(&String::from_utf8_lossy(&value.eval(r)), *modified) {
                Ok(e) => (e, false),
                Err(_) => return,
            }
        }
    };
    let now = unix_secs(SystemTime::now());
    let lm = r.headers_out.last_modified.map(unix_secs);
    if let Some((date, cc)) = expires_values(e, now, lm, conf_negative) {
        r.headers_out.set(Bytes::from_static(b"Expires"), date);
        r.headers_out.set(Bytes::from_static(b"Cache-Control"), cc);
    }
}

/// The header filter.
struct HeadersFilter;

impl HeadersLocConf {
    /// `expires`, unless it is off.
    fn expires_on(&self) -> Option<&ExpiresConf> {
        self.expires.as_ref().filter(|e| !matches!(e, ExpiresConf::Fixed(Expires::Off)))
    }

    /// Whether a response here can get a header or trailer from this module.
    fn has_work(&self) -> bool {
        self.headers.is_some() || self.trailers.is_some() || self.expires_on().is_some()
    }
}

impl HeaderFilter for HeadersFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).has_work()
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let conf = r.loc_conf(&KEY);
        if !conf.has_work() {
            return next.call(r);
        }
        let expires = conf.expires_on();
        let safe = status_gets_headers(r.headers_out.status);
        if let Some(e) = expires.filter(|_| safe).cloned() {
            apply_expires(r, &e);
        }
        let conf = r.loc_conf(&KEY);
        let headers = conf.headers.clone().unwrap_or_default();
        let trailers = conf.trailers.clone().unwrap_or_default();
        let (headers, trailers): (&[Entry], &[Entry]) = (&headers, &trailers);
        for e in headers.iter().filter(|e| safe || e.always) {
            let v = e.value.eval(r);
            add_header(r, &e.name, v);
        }
        if r.protocol() == "HTTP/1.1" && !r.header_only {
            let due: Vec<Entry> = trailers.iter().filter(|e| safe || e.always).cloned().collect();
            if !due.is_empty() {
                // Named now, so the chunked filter chooses chunked framing;
                // valued at the end of the body (see `TrailersFilter`), when
                // `$sent_http_*` and `$upstream_*` are final.
                for e in &due {
                    r.headers_out.trailers.push((e.name.clone(), Bytes::new()));
                }
                r.set_ctx(&KEY, PendingTrailers(due));
            }
        }
        next.call(r)
    }
}

/// The trailers a response will end with, valued when its last buf passes.
struct PendingTrailers(Vec<Entry>);

/// Values the trailers when the last buf passes, in the order written (a
/// trailer may refer to an earlier one with `$sent_trailer_NAME`); empty
/// values are left out.
struct TrailersFilter;

impl BodyFilter for TrailersFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).trailers.is_some()
    }

    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        if chain.is_last() {
            if let Some(PendingTrailers(due)) = r.take_ctx(&KEY) {
                r.headers_out.trailers.clear();
                for e in &due {
                    let v = e.value.eval(r);
                    if !v.is_empty() {
                        r.headers_out.trailers.push((e.name.clone(), v));
                    }
                }
            }
        }
        next.call(r, chain)
    }
}

impl HttpModule for HeadersModule {
    fn name(&self) -> &'static str {
        "headers"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        let ctx = C::HTTP_ANY | C::HTTP_LIF;
        vec![
            Directive::new(
                "add_header",
                ctx,
                Args::TAKE23,
                Level::Loc,
                custom(|cx, c: &mut HeadersLocConf, s| {
                    let e = parse_entry(cx, s)?;
                    Arc::make_mut(c.headers.get_or_insert_with(Default::default)).push(e);
                    Ok(())
                }),
            ),
            Directive::new("expires", ctx, Args::TAKE12, Level::Loc, custom(set_expires)),
            Directive::new(
                "add_trailer",
                ctx,
                Args::TAKE23,
                Level::Loc,
                custom(|cx, c: &mut HeadersLocConf, s| {
                    let e = parse_entry(cx, s)?;
                    Arc::make_mut(c.trailers.get_or_insert_with(Default::default)).push(e);
                    Ok(())
                }),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(HeadersLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &HeadersLocConf = downcast(parent);
        let c: &mut HeadersLocConf = downcast_mut(child);
        if c.headers.is_none() {
            c.headers.clone_from(&p.headers);
        }
        if c.trailers.is_none() {
            c.trailers.clone_from(&p.trailers);
        }
        if c.expires.is_none() {
            c.expires.clone_from(&p.expires);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(HeadersFilter));
        cf.push_body_filter(Arc::new(TrailersFilter));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(e: Expires, now: i64, lm: Option<i64>) -> (String, String) {
        let (d, cc) = expires_values(e, now, lm, true).expect("headers");
        (String::from_utf8(d.to_vec()).unwrap(), String::from_utf8(cc.to_vec()).unwrap())
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse_expires("epoch", false), Ok(Expires::Epoch));
        assert_eq!(parse_expires("max", false), Ok(Expires::Max));
        assert_eq!(parse_expires("off", false), Ok(Expires::Off));
        assert_eq!(parse_expires("2048", false), Ok(Expires::Access(2048)));
        assert_eq!(parse_expires("+1h", false), Ok(Expires::Access(3600)));
        assert_eq!(parse_expires("-2048", false), Ok(Expires::Access(-2048)));
        assert_eq!(parse_expires("1d 2h", false), Ok(Expires::Access(93600)));
        assert_eq!(parse_expires("@15h30m33s", false), Ok(Expires::Daily(55833)));
        assert_eq!(parse_expires("2048", true), Ok(Expires::Modified(2048)));
        assert_eq!(parse_expires("epoch", true), Err("invalid value"));
        assert_eq!(parse_expires("@1h", true), Err("daily time cannot be used with \"modified\" parameter"));
        assert_eq!(parse_expires("@25h", false), Err("daily time value must be less than 24 hours"));
        assert_eq!(parse_expires("bad", false), Err("invalid value"));
        assert_eq!(parse_expires("", false), Err("invalid value"));
        assert_eq!(parse_expires("10ms", false), Err("invalid value"));
    }

    #[test]
    fn header_values_as_nginx() {
        // 2001-09-09 01:46:40 UTC.
        let now = 1_000_000_000;
        assert_eq!(values(Expires::Epoch, now, None), ("Thu, 01 Jan 1970 00:00:01 GMT".into(), "no-cache".into()));
        assert_eq!(
            values(Expires::Max, now, None),
            ("Thu, 31 Dec 2037 23:55:55 GMT".into(), "max-age=315360000".into())
        );
        assert_eq!(values(Expires::Access(0), now, None), ("Sun, 09 Sep 2001 01:46:40 GMT".into(), "max-age=0".into()));
        assert_eq!(
            values(Expires::Access(2048), now, None),
            ("Sun, 09 Sep 2001 02:20:48 GMT".into(), "max-age=2048".into())
        );
        assert_eq!(
            values(Expires::Access(-2048), now, None),
            ("Sun, 09 Sep 2001 01:12:32 GMT".into(), "no-cache".into())
        );
        // From Last-Modified: 1970-09-28 06:00:00 + 2048 s, long past.
        let lm = 23_349_600;
        assert_eq!(
            values(Expires::Modified(2048), now, Some(lm)),
            ("Mon, 28 Sep 1970 06:34:08 GMT".into(), "no-cache".into())
        );
        assert_eq!(values(Expires::Modified(2048), now, Some(now - 48)).1, "max-age=2000");
        assert_eq!(values(Expires::Modified(2048), now, None).1, "max-age=2048");
        assert_eq!(expires_values(Expires::Off, now, None, true), None);
    }

    #[test]
    fn daily_is_the_next_such_time_of_day() {
        let now = 1_000_000_000;
        let (date, cc) = values(Expires::Daily(33), now, None);
        assert!(date.ends_with(":33 GMT"), "{date}");
        let age: i64 = cc.strip_prefix("max-age=").unwrap().parse().unwrap();
        assert!(age > 0 && age <= 25 * 3600, "{age}");
        let t = next_time(now, 15 * 3600 + 30 * 60 + 33);
        assert!(t > now && t - now <= 25 * 3600);
    }

    #[test]
    fn statuses_that_get_headers() {
        for s in [200, 201, 204, 206, 301, 302, 303, 304, 307, 308] {
            assert!(status_gets_headers(s), "{s}");
        }
        for s in [100, 202, 400, 401, 403, 404, 500] {
            assert!(!status_gets_headers(s), "{s}");
        }
    }
}
