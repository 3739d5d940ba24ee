//! From the upstream's head to the client's: which fields pass, which the
//! proxy consumes (`X-Accel-*`), `proxy_redirect`, and the responses the
//! location answers itself (`proxy_intercept_errors`, `X-Accel-Redirect`).

use bytes::Bytes;
use sluice_http::{Flow, Request};

use super::conf::{ignore, KEY};
use super::head::UpstreamHead;
use super::task::ProxyTask;

/// Fields hidden from the client unless `proxy_pass_header` names them.
const HIDDEN: &[&[u8]] = &[
    b"date",
    b"server",
    b"x-pad",
    b"x-accel-expires",
    b"x-accel-redirect",
    b"x-accel-limit-rate",
    b"x-accel-buffering",
    b"x-accel-charset",
];

/// Fields a response has one of; a repeated one is ignored.
const SINGLE: &[&[u8]] = &[b"content-type", b"last-modified", b"location", b"refresh", b"expires", b"etag"];

/// Hop-by-hop fields: they describe the upstream connection, not the
/// response.
const HOP_BY_HOP: &[&[u8]] =
    &[b"connection", b"keep-alive", b"transfer-encoding", b"proxy-connection", b"te", b"trailer", b"upgrade"];

/// Answers that end the proxying before the body: an error the location
/// has an `error_page` for (with `proxy_intercept_errors on`), or an
/// `X-Accel-Redirect`. Also applies `X-Accel-Buffering`.
pub(super) fn intercept(task: &mut ProxyTask, r: &mut Request, h: &UpstreamHead) -> Option<Flow> {
    let conf = r.loc_conf(&KEY);
    let ignored = conf.ignore_headers.unwrap_or(0);
    if ignored & ignore::X_ACCEL_BUFFERING == 0 {
        if let Some(v) = h.get("x-accel-buffering") {
            task.buffering = v.eq_ignore_ascii_case(b"yes");
        }
    }
    if ignored & ignore::X_ACCEL_LIMIT_RATE == 0 {
        if let Some(v) = h.get("x-accel-limit-rate") {
            // A number of bytes per second, or `off` for none.
            let rate = if v.eq_ignore_ascii_case(b"off") {
                Some(0)
            } else {
                std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok())
            };
            if let Some(rate) = rate {
                r.set_limit_rate(rate);
            }
        }
    }
    let conf = r.loc_conf(&KEY);
    let status = h.status;
    if status >= 300 && conf.intercept_errors.unwrap_or(false) {
        let has_page =
            r.core_loc().error_pages.as_ref().is_some_and(|pages| pages.iter().any(|p| p.codes.contains(&status)));
        if has_page {
            task.release_connection(r);
            if status == 401 {
                // The challenge stays with the error page (nginx keeps it).
                for (n, v) in h.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"www-authenticate")) {
                    r.headers_out.add(n.clone(), v.clone());
                }
            }
            return Some(Flow::Status(status));
        }
    }
    if ignored & ignore::X_ACCEL_REDIRECT == 0 {
        if let Some(target) = h.get("x-accel-redirect").cloned() {
            task.release_connection(r);
            return Some(accel_redirect(r, h, target));
        }
    }
    None
}

/// `X-Accel-Redirect: /uri?args` or `@named`: an internal redirect, with
/// the few fields nginx keeps from the upstream's answer.
fn accel_redirect(r: &mut Request, h: &UpstreamHead, target: Bytes) -> Flow {
    r.headers_out = Default::default();
    for (name, value) in &h.headers {
        let keep = [&b"set-cookie"[..], b"cache-control", b"expires", b"content-disposition", b"accept-ranges"];
        if name.eq_ignore_ascii_case(b"content-type") {
            r.headers_out.content_type = Some(value.clone());
        } else if keep.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            r.headers_out.add(name.clone(), value.clone());
        }
    }
    if r.head.method_name.as_ref() != b"HEAD" {
        r.head.method = sluice_http::parse::Method::Get;
        r.head.method_name = Bytes::from_static(b"GET");
    }
    if let Some(name) = target.strip_prefix(b"@") {
        let name = format!("@{}", String::from_utf8_lossy(name));
        return sluice_http::phase::named_redirect(r, &name);
    }
    let (uri, args) = match memchr::memchr(b'?', &target) {
        Some(i) => (target.slice(..i), target.slice(i + 1..)),
        None => (target.clone(), Bytes::new()),
    };
    match safe_uri(&uri) {
        Some(uri) => sluice_http::phase::internal_redirect(r, uri, args),
        None => {
            let shown = String::from_utf8_lossy(&target).into_owned();
            sluice_http::req_log!(r, sluice_core::log::Level::Error, "unsafe URI \"{shown}\" was detected");
            Flow::Status(404)
        }
    }
}

/// The `X-Accel-Redirect` path, percent-decoded; `None` when it is unsafe
/// (not absolute, a NUL, or a `..` segment once decoded), as nginx refuses.
fn safe_uri(raw: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        let hex = |b: u8| (b as char).to_digit(16);
        if c == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    if out.first() != Some(&b'/') || out.contains(&0) {
        return None;
    }
    if out.split(|&b| b == b'/').any(|seg| seg == b"..") {
        return None;
    }
    Some(Bytes::from(out))
}

/// Fills the client's response head from the upstream's.
pub(super) fn headers_out(r: &mut Request, h: &UpstreamHead) {
    // The location is held apart from the request, so its conf can be read
    // while the request's headers are written (no copies of the lists).
    let loc = r.loc.clone();
    let conf = loc.conf(&KEY);
    let hide = conf.hide_headers.as_deref().unwrap_or_default();
    let pass = conf.pass_headers.as_deref().unwrap_or_default();
    let redirects = conf.redirect.as_deref();
    // Only a `Location` or `Refresh` needs the default rule.
    let mut default = None;
    let rewrite_cookies = super::cookie::CookieRules::active(conf.cookie_domains.as_ref())
        || super::cookie::CookieRules::active(conf.cookie_paths.as_ref())
        || super::cookie::FlagRules::active(conf.cookie_flags.as_ref());
    r.headers_out.status = h.status;
    r.headers_out.content_length = if h.chunked { None } else { h.content_length };
    let mut seen: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
    let mut lower_buf = [0u8; 64];
    for (name, value) in &h.headers {
        let lower_heap;
        // Lowercased on the stack: names longer than 64 bytes are rare.
        let lower: &[u8] = if name.len() <= lower_buf.len() {
            let b = &mut lower_buf[..name.len()];
            b.copy_from_slice(name);
            b.make_ascii_lowercase();
            b
        } else {
            lower_heap = name.to_ascii_lowercase();
            &lower_heap
        };
        if SINGLE.contains(&lower) {
            // As nginx: a repeated single-valued field is ignored.
            if seen.iter().any(|s| s.eq_ignore_ascii_case(lower)) {
                continue;
            }
            seen.push(name);
        }
        if HOP_BY_HOP.contains(&lower) && !(h.status == 101 && lower == b"upgrade") {
            continue;
        }
        let hidden = HIDDEN.contains(&lower) || hide.iter().any(|n| n.as_ref() == lower);
        if hidden && !pass.iter().any(|n| n.as_ref() == lower) {
            continue;
        }
        match lower {
            b"content-length" => {}
            b"content-type" => r.headers_out.content_type = Some(value.clone()),
            b"last-modified" => match std::str::from_utf8(value).ok().and_then(sluice_core::time::parse_http_date) {
                Some(t) => r.headers_out.last_modified = Some(t),
                None => r.headers_out.add(name.clone(), value.clone()),
            },
            b"location" => {
                let default = default.get_or_insert_with(|| super::redirect::default_rule(conf));
                let v = super::redirect::rewrite_with(r, redirects, default.as_ref(), value, 0)
                    .unwrap_or_else(|| value.clone());
                r.headers_out.location = Some(v);
            }
            b"refresh" => {
                let at = memchr::memmem::find(&value.to_ascii_lowercase(), b"url=").map(|i| i + 4);
                let default = default.get_or_insert_with(|| super::redirect::default_rule(conf));
                let v = at.and_then(|i| super::redirect::rewrite_with(r, redirects, default.as_ref(), value, i));
                r.headers_out.add(name.clone(), v.unwrap_or_else(|| value.clone()));
            }
            b"set-cookie" if rewrite_cookies => {
                let (domains, paths, flags) =
                    (conf.cookie_domains.as_ref(), conf.cookie_paths.as_ref(), conf.cookie_flags.as_ref());
                let v = super::cookie::rewrite(r, domains, paths, flags, value);
                r.headers_out.add(name.clone(), v.unwrap_or_else(|| value.clone()));
            }
            _ => r.headers_out.add(name.clone(), value.clone()),
        }
    }
}
