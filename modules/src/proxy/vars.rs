//! The proxy's variables: `$proxy_host`, `$proxy_port`,
//! `$proxy_add_x_forwarded_for`, and the `$upstream_*` family, which list
//! one value per upstream tried, joined by ", " (nginx's form).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_http::variables::Variables;
use sluice_http::Request;

use super::conf::KEY;

/// What a request remembers of its upstream work, for variables and logs.
#[derive(Default)]
pub(crate) struct ProxyCtx {
    /// `$proxy_host`.
    pub proxy_host: Bytes,
    /// `$proxy_port`.
    pub proxy_port: Bytes,
    /// One entry per upstream tried (inline for the usual single try: no
    /// allocation of its own per proxied request).
    pub tries: smallvec::SmallVec<[TryLog; 1]>,
    /// Where the tries of a later proxied location start, after an
    /// internal redirect (joined by " : " instead of ", ", as nginx).
    pub redirects: Vec<usize>,
    /// Where the request goes, while its body is being read.
    pub target: Option<super::task::Target>,
    /// The last upstream response head's fields (`$upstream_http_NAME`).
    pub headers: Vec<(Bytes, Bytes)>,
}

/// One upstream attempt.
#[derive(Debug)]
pub(crate) struct TryLog {
    pub addr: Arc<str>,
    pub start: Instant,
    pub status: Option<u16>,
    pub connect: Option<Duration>,
    pub header: Option<Duration>,
    pub end: Option<Instant>,
    pub length: u64,
    /// Bytes read from and written to the upstream.
    pub received: u64,
    pub sent: u64,
}

impl TryLog {
    pub(crate) fn new(addr: Arc<str>) -> TryLog {
        TryLog {
            addr,
            start: sluice_core::event::now(),
            status: None,
            connect: None,
            header: None,
            end: None,
            length: 0,
            received: 0,
            sent: 0,
        }
    }
}

pub(crate) fn add(vars: &mut Variables) -> Result<(), String> {
    vars.add("proxy_host", |r, _| ctx(r).map(|c| c.proxy_host.clone()))?;
    vars.add("proxy_port", |r, _| ctx(r).map(|c| c.proxy_port.clone()))?;
    vars.add("proxy_add_x_forwarded_for", |r, _| Some(forwarded_for(r)))?;
    vars.add("upstream_addr", |r, _| join(r, |t, out| out.push_str(&t.addr)))?;
    vars.add("upstream_status", |r, _| {
        join(r, |t, out| match t.status {
            Some(s) => write!(out, "{s}").unwrap_or(()),
            None => out.push('-'),
        })
    })?;
    vars.add("upstream_response_time", |r, _| {
        // An attempt still running has no response time yet ("-").
        join(r, |t, out| secs(out, t.end.map(|e| e.saturating_duration_since(t.start))))
    })?;
    vars.add("upstream_connect_time", |r, _| join(r, |t, out| secs(out, t.connect)))?;
    vars.add("upstream_header_time", |r, _| join(r, |t, out| secs(out, t.header)))?;
    vars.add("upstream_response_length", |r, _| join(r, |t, out| write!(out, "{}", t.length).unwrap_or(())))?;
    vars.add("upstream_bytes_received", |r, _| join(r, |t, out| write!(out, "{}", t.received).unwrap_or(())))?;
    vars.add("upstream_bytes_sent", |r, _| join(r, |t, out| write!(out, "{}", t.sent).unwrap_or(())))?;
    vars.add_prefix("upstream_http_", header)?;
    vars.add_prefix("upstream_cookie_", cookie)?;
    Ok(())
}

/// A field of the upstream's response head, `_` standing for `-`; several
/// of that name joined with ", ", as nginx joins them.
fn header(r: &Request, name: &str) -> Option<Bytes> {
    use sluice_http::core_variables::{field_is, join_values};
    join_values(ctx(r)?.headers.iter().filter(|(n, _)| field_is(n, name)).map(|(_, v)| v), b", ")
}

/// A cookie the upstream set, from the first `Set-Cookie` that starts
/// with its name, read as nginx reads it: the name (any case), spaces, `=`,
/// spaces, then the value up to `;` or the end (`tc = a b; Path=/` gives
/// `a b`; a tab where a space may stand makes the field not match).
fn cookie(r: &Request, name: &str) -> Option<Bytes> {
    let c = ctx(r)?;
    let name = name.as_bytes();
    for (_, v) in c.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie")) {
        if v.len() <= name.len() || !v[..name.len()].eq_ignore_ascii_case(name) {
            continue;
        }
        let skip_spaces = |from: usize| from + v[from..].iter().take_while(|&&b| b == b' ').count();
        let eq = skip_spaces(name.len());
        if v.get(eq) != Some(&b'=') {
            continue;
        }
        let start = skip_spaces(eq + 1);
        let end = start + memchr::memchr(b';', &v[start..]).unwrap_or(v.len() - start);
        return Some(v.slice(start..end));
    }
    None
}

fn ctx(r: &Request) -> Option<&ProxyCtx> {
    r.lasting_ctx::<_, _, _, ProxyCtx>(&KEY)
}

fn join(r: &Request, each: impl Fn(&TryLog, &mut String)) -> Option<Bytes> {
    let c = ctx(r)?;
    if c.tries.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, t) in c.tries.iter().enumerate() {
        if c.redirects.contains(&i) {
            out.push_str(" : ");
        } else if i > 0 {
            out.push_str(", ");
        }
        each(t, &mut out);
    }
    Some(Bytes::from(out))
}

fn secs(out: &mut String, d: Option<Duration>) {
    match d {
        Some(d) => {
            let ms = d.as_millis();
            let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
        }
        None => out.push('-'),
    }
}

/// The client's `X-Forwarded-For` (all of them, comma-joined) with the
/// client's address appended.
pub(crate) fn forwarded_for(r: &Request) -> Bytes {
    let mut out = Vec::new();
    for h in r.head.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(b"x-forwarded-for")) {
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(r.conn.peer.ip().to_string().as_bytes());
    Bytes::from(out)
}
