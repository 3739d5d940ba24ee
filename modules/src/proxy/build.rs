//! The request sent upstream: request line, headers and body, built as
//! nginx's proxy builds them.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_http::parse::escape_uri;
use sluice_http::Request;

use super::conf::{Pass, ProxyLocConf};

/// Client header fields never passed on as sent: the proxy sets its own
/// (`Host`, `Connection`, the body framing) or drops them as hop-by-hop.
const REPLACED: &[&[u8]] =
    &[b"host", b"connection", b"content-length", b"transfer-encoding", b"te", b"keep-alive", b"expect", b"upgrade"];

/// How the body goes upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFrame {
    None,
    Length(u64),
    Chunked,
}

/// The URI the upstream gets. `url_uri` is the URI part of the
/// `proxy_pass` URL (evaluated, with variables).
pub(crate) fn upstream_uri(r: &Request, conf: &ProxyLocConf, url_uri: Option<&[u8]>) -> Bytes {
    let dynamic = matches!(conf.pass.as_deref(), Some(Pass::Dynamic(_)));
    match url_uri {
        // With variables, a URI part is the whole URI (nginx's rule).
        Some(u) if dynamic => Bytes::copy_from_slice(u),
        None if unparsed_uri_valid(r) => r.head.unparsed_uri_bytes(),
        _ => {
            let loc = conf.location.as_deref().unwrap_or("");
            // After `rewrite ... break` the URI no longer belongs to the
            // location: it goes as it is, without the URL's URI part (nginx).
            let valid = location_valid(r);
            let skip = match url_uri {
                Some(_) if valid && r.uri.starts_with(loc.as_bytes()) => loc.len(),
                _ => 0,
            };
            let mut out = BytesMut::new();
            if valid {
                out.extend_from_slice(url_uri.unwrap_or(b""));
            }
            escape_uri(&mut out, &r.uri[skip..]);
            if !r.args.is_empty() {
                out.put_u8(b'?');
                out.extend_from_slice(&r.args);
            }
            out.freeze()
        }
    }
}

/// The URI is still the one the client sent (no rewrite, no redirect).
fn unparsed_uri_valid(r: &Request) -> bool {
    !r.internal && r.uri == r.head.uri && r.args == r.head.args
}

/// The location was chosen for the current URI (a `rewrite ... break`
/// inside the location changes the URI without choosing again).
fn location_valid(r: &Request) -> bool {
    r.location_valid()
}

/// The request line and header fields, up to the empty line.
pub(crate) fn head(r: &Request, conf: &ProxyLocConf, uri: &[u8], proxy_host: &[u8], body: BodyFrame) -> Bytes {
    // Written on the stack and copied once into the worker's arena: no
    // allocation of its own per proxied request.
    let mut out: smallvec::SmallVec<[u8; 1024]> = smallvec::SmallVec::new();
    match &conf.method {
        Some(m) => out.extend_from_slice(&m.eval(r)),
        None => out.extend_from_slice(&r.head.method_name),
    }
    out.push(b' ');
    out.extend_from_slice(uri);
    out.extend_from_slice(if conf.http_version == Some(1) { b" HTTP/1.1\r\n" } else { b" HTTP/1.0\r\n" });
    let set = conf.set_headers.as_deref().map(Vec::as_slice).unwrap_or(&[]);
    let mut line = |name: &[u8], value: &[u8]| {
        if !value.is_empty() {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    };
    let user = |name: &str| set.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()));
    match user("host") {
        Some((n, v)) => line(n, &v.eval(r)),
        None => line(b"Host", proxy_host),
    }
    match user("connection") {
        Some((n, v)) => line(n, &v.eval(r)),
        None => line(b"Connection", b"close"),
    }
    match body {
        BodyFrame::Length(n) => line(b"Content-Length", sluice_http::filters::header_writer::decimal(n, &mut [0; 20])),
        BodyFrame::Chunked => line(b"Transfer-Encoding", b"chunked"),
        BodyFrame::None => {}
    }
    for (n, v) in set {
        if !n.eq_ignore_ascii_case(b"host") && !n.eq_ignore_ascii_case(b"connection") {
            line(n, &v.eval(r));
        }
    }
    if conf.pass_request_headers.unwrap_or(true) {
        for h in &r.head.headers {
            let replaced = |n: &&[u8]| n.eq_ignore_ascii_case(&h.name);
            if REPLACED.iter().any(replaced) || set.iter().any(|(n, _)| n.eq_ignore_ascii_case(&h.name)) {
                continue;
            }
            line(&h.name, &h.value);
        }
    }
    out.extend_from_slice(b"\r\n");
    sluice_http::head_buf::copy(&out)
}
