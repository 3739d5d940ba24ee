//! The core variables: `$uri`, `$args`, `$arg_NAME`, `$http_NAME`, `$host`,
//! `$remote_addr`, ... (nginx's `ngx_http_core_variables`).

use bytes::Bytes;

use crate::request::Request;
use crate::variables::Variables;

fn b(s: impl Into<String>) -> Option<Bytes> {
    Some(Bytes::from(s.into()))
}

/// The values of a field that may come several times, as one: the value
/// itself when there is one (shared, not copied), else all of them joined
/// by `sep`, in order, as nginx joins them for its header variables.
/// `None` when there are none.
pub fn join_values<'a>(mut values: impl Iterator<Item = &'a Bytes>, sep: &[u8]) -> Option<Bytes> {
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut out = first.to_vec();
    for v in std::iter::once(second).chain(values) {
        out.extend_from_slice(sep);
        out.extend_from_slice(v);
    }
    Some(Bytes::from(out))
}

/// `$http_NAME`: a request header, dashes written as underscores; several
/// `Cookie` headers are joined with "; ", others with ", ".
fn http_header(r: &Request, name: &str) -> Option<Bytes> {
    let wanted = name.replace('_', "-");
    let sep: &[u8] = if wanted.eq_ignore_ascii_case("cookie") { b"; " } else { b", " };
    join_values(r.head.headers_named(&wanted), sep)
}

/// `$arg_NAME`: the first argument of that name (case-insensitive), not decoded.
pub fn arg(args: &[u8], name: &str) -> Option<Bytes> {
    for pair in args.split(|&c| c == b'&') {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if k.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(Bytes::copy_from_slice(v));
        }
    }
    None
}

fn cookie(r: &Request, name: &str) -> Option<Bytes> {
    for h in r.head.headers_named("cookie") {
        for part in h.split(|&c| c == b';') {
            let part = part.trim_ascii();
            if let Some(i) = memchr::memchr(b'=', part) {
                if part[..i].eq_ignore_ascii_case(name.as_bytes()) {
                    return Some(Bytes::copy_from_slice(&part[i + 1..]));
                }
            }
        }
    }
    None
}

/// `$sent_trailer_NAME`: a trailer of the response (`-` and `_` alike,
/// case-insensitive, as header variables).
fn sent_trailer(r: &Request, name: &str) -> Option<Bytes> {
    join_values(r.headers_out.trailers.iter().filter(|(n, _)| field_is(n, name)).map(|(_, v)| v), b", ")
}

/// True when the header field `field` is the one a variable suffix names
/// (`$sent_trailer_x_var`, `$upstream_http_x_var`): case-insensitive, `_`
/// standing for `-`.
pub fn field_is(field: &[u8], name: &str) -> bool {
    field.len() == name.len()
        && field.iter().zip(name.bytes()).all(|(&a, b)| a.to_ascii_lowercase() == b || (a == b'-' && b == b'_'))
}

/// `$sent_http_NAME`: a response header (several of that name joined with
/// ", "); `Connection`, `Keep-Alive` and `Transfer-Encoding` are decided by
/// the header writer and chunked filter, so they are derived from the
/// request's state as those write them.
fn sent_http(r: &Request, name: &str) -> Option<Bytes> {
    match name {
        "connection" => b(if r.headers_out.status == 101 {
            "upgrade"
        } else if r.keepalive {
            "keep-alive"
        } else {
            "close"
        }),
        "keep_alive" => match r.core_loc().keepalive_timeout {
            Some((_, Some(h))) if r.keepalive => b(format!("timeout={}", h.as_secs())),
            _ => None,
        },
        "transfer_encoding" => r.headers_out.chunked.then(|| Bytes::from_static(b"chunked")),
        "content_type" | "content_length" | "location" | "last_modified" => r.headers_out.get(&name.replace('_', "-")),
        _ => join_values(r.headers_out.headers.iter().filter(|(n, _)| field_is(n, name)).map(|(_, v)| v), b", "),
    }
}

/// `set $limit_rate SIZE`: the response's rate from now on, as the
/// `limit_rate` directive's value; a value that is not a size is logged
/// and leaves the rate as it was, as nginx does.
fn set_limit_rate(r: &mut Request, value: Bytes) {
    match std::str::from_utf8(&value).ok().and_then(sluice_core::conf::value::parse_size) {
        Some(rate) => r.set_limit_rate(rate),
        None => crate::req_log!(
            r,
            sluice_core::log::Level::Error,
            "invalid $limit_rate \"{}\"",
            String::from_utf8_lossy(&value)
        ),
    }
}

/// Registers the core variables.
pub fn register(v: &mut Variables) -> Result<(), String> {
    v.add("uri", |r, _| Some(r.uri.clone()))?;
    v.add("document_uri", |r, _| Some(r.uri.clone()))?;
    v.add_settable("args", |r, _| Some(r.args.clone()), |r, value| r.args = value)?;
    v.add("query_string", |r, _| Some(r.args.clone()))?;
    v.add("is_args", |r, _| b(if r.args.is_empty() { "" } else { "?" }))?;
    v.add("request_uri", |r, _| Some(r.head.unparsed_uri_bytes()))?;
    v.add("request", |r, _| Some(r.head.request_line_bytes()))?;
    v.add("request_method", |r, _| Some(r.head.method_name.clone()))?;
    v.add("server_protocol", |r, _| b(r.protocol()))?;
    v.add("scheme", |_, _| b("http"))?;
    v.add("https", |_, _| b(""))?;
    v.add("host", |r, _| Some(if r.host.is_empty() { Bytes::from(r.server.name.clone()) } else { r.host.clone() }))?;
    v.add("hostname", |_, _| nix_hostname())?;
    v.add("server_name", |r, _| b(r.server.name.clone()))?;
    v.add("remote_addr", |r, _| b(r.conn.peer.ip().to_string()))?;
    v.add("binary_remote_addr", |r, _| {
        Some(match r.conn.peer.ip() {
            std::net::IpAddr::V4(a) => Bytes::copy_from_slice(&a.octets()),
            std::net::IpAddr::V6(a) => Bytes::copy_from_slice(&a.octets()),
        })
    })?;
    v.add("remote_port", |r, _| b(r.conn.peer.port().to_string()))?;
    v.add("server_addr", |r, _| b(r.conn.local.ip().to_string()))?;
    v.add("server_port", |r, _| b(r.conn.local.port().to_string()))?;
    v.add("content_length", |r, _| r.header("content-length").cloned())?;
    v.add("content_type", |r, _| join_values(r.head.headers_named("content-type"), b", "))?;
    v.add("request_body", |r, _| r.body.in_memory())?;
    v.add("request_body_file", |r, _| r.body_file().map(|p| Bytes::from(p.display().to_string())))?;
    v.add("request_length", |r, _| b((r.head.head_len as u64 + r.body.received).to_string()))?;
    // Inside an error page's location, the status the page answers (as
    // nginx's `r->err_status`), before any response status is set.
    v.add("status", |r, _| {
        let status = if r.err_status != 0 { r.err_status } else { r.headers_out.status };
        b(format!("{status:03}"))
    })?;
    v.add_settable("limit_rate", |r, _| b(r.limit_rate().to_string()), set_limit_rate)?;
    v.add("connection", |r, _| b(r.conn.id.to_string()))?;
    v.add("pipe", |r, _| b(if r.pipelined() { "p" } else { "." }))?;
    v.add("connection_requests", |r, _| b(r.conn.requests.to_string()))?;
    v.add("bytes_sent", |r, _| b(r.bytes_sent.to_string()))?;
    v.add("body_bytes_sent", |r, _| b(r.bytes_sent.saturating_sub(r.header_bytes).to_string()))?;
    v.add("request_time", |r, _| {
        let t = r.start.elapsed();
        b(format!("{}.{:03}", t.as_secs(), t.subsec_millis()))
    })?;
    v.add("msec", |_, _| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b(format!("{}.{:03}", t.as_secs(), t.subsec_millis()))
    })?;
    v.add("pid", |_, _| b(std::process::id().to_string()))?;
    v.add("time_local", |_, _| b(sluice_core::time::time_local(std::time::SystemTime::now())))?;
    v.add("time_iso8601", |_, _| b(sluice_core::time::time_iso8601(std::time::SystemTime::now())))?;
    v.add("remote_user", remote_user)?;
    v.add("connection_time", |r, _| {
        let t = r.conn.accepted.elapsed();
        b(format!("{}.{:03}", t.as_secs(), t.subsec_millis()))
    })?;
    v.add("nginx_version", |_, _| b("1.27.0"))?;
    v.add("sluice_version", |_, _| b(env!("CARGO_PKG_VERSION")))?;
    v.add("request_filename", |r, _| b(r.map_uri_to_path(&r.uri).to_string_lossy().into_owned()))?;
    v.add("realpath_root", |r, _| {
        let root = r.map_uri_to_path(b"");
        std::fs::canonicalize(root).ok().map(|p| Bytes::from(p.to_string_lossy().into_owned()))
    })?;
    v.add("document_root", |r, _| r.core_loc().root.as_ref().map(|cv| cv.eval(r)))?;
    v.add_prefix("http_", http_header)?;
    v.add_prefix("sent_http_", sent_http)?;
    v.add_prefix("sent_trailer_", sent_trailer)?;
    v.add_prefix("arg_", |r, name| arg(&r.args, name))?;
    v.add_prefix("cookie_", cookie)?;
    Ok(())
}

/// `$remote_user`: the user name of Basic authorization, as sent.
fn remote_user(r: &Request, _: &str) -> Option<Bytes> {
    use base64::Engine as _;
    let v = r.header("authorization")?;
    let (scheme, cred) = v.split_at(memchr::memchr(b' ', v)?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(cred.trim_ascii()).ok()?;
    let user = decoded.split(|&c| c == b':').next()?;
    Some(Bytes::copy_from_slice(user))
}

fn nix_hostname() -> Option<Bytes> {
    nix::unistd::gethostname().ok().map(|h| Bytes::from(h.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_by_name() {
        assert_eq!(arg(b"a=1&B=2&c", "b"), Some(Bytes::from_static(b"2")));
        assert_eq!(arg(b"a=1&c", "c"), Some(Bytes::new()));
        assert_eq!(arg(b"a=1", "x"), None);
    }
}
