//! Special responses: error pages, `error_page` redirects, and the built-in
//! pages in nginx's form.

use bytes::Bytes;

use crate::core_module::ServerTokens;
use crate::module::Flow;
use crate::phase;
use crate::request::Request;

/// The reason phrase of a status, as nginx sends it.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// The `Server` header value / page signature.
pub fn server_signature(tokens: ServerTokens) -> &'static str {
    match tokens {
        ServerTokens::Off => "sluice",
        ServerTokens::On | ServerTokens::Build => concat!("sluice/", env!("CARGO_PKG_VERSION")),
    }
}

/// The whole `Server:` line for [`server_signature`], CRLF included (one
/// copy per response).
pub fn server_line(tokens: ServerTokens) -> &'static [u8] {
    match tokens {
        ServerTokens::Off => b"Server: sluice\r\n",
        ServerTokens::On | ServerTokens::Build => {
            concat!("Server: sluice/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes()
        }
    }
}

/// The built-in page for a status (None for statuses without one).
pub fn page(status: u16, tokens: ServerTokens) -> Option<Bytes> {
    let title = match status {
        494 => "400 Request Header Or Cookie Too Large".to_string(),
        // The status line says "Moved Temporarily"; nginx's page says "Found".
        302 => "302 Found".to_string(),
        // Likewise nginx's 401 page says "Authorization Required".
        401 => "401 Authorization Required".to_string(),
        s if s >= 300 && !reason(s).is_empty() => format!("{} {}", s, reason(s)),
        _ => return None,
    };
    let head = if status == 494 {
        "<center><h1>400 Bad Request</h1></center>\r\n<center>Request Header Or Cookie Too Large</center>\r\n"
            .to_string()
    } else {
        format!("<center><h1>{title}</h1></center>\r\n")
    };
    Some(Bytes::from(format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n{head}<hr><center>{}</center>\r\n</body>\r\n</html>\r\n",
        server_signature(tokens)
    )))
}

/// Statuses after which nginx does not keep the connection.
fn closes_connection(status: u16) -> bool {
    matches!(status, 400 | 408 | 413 | 414 | 494 | 500 | 501)
}

/// Answers the request with `status`: through a matching `error_page`, or
/// the built-in page.
pub(crate) fn send(r: &mut Request, status: u16) {
    // No "100 Continue" ahead of an error: the client should not send a
    // body only to have it dropped (nginx marks the expectation as tested).
    r.body.continue_sent = true;
    if closes_connection(status) {
        r.keepalive = false;
    }
    if status == 444 {
        r.keepalive = false;
        r.conn.broken = true;
        r.last_sent = true;
        return;
    }
    if !r.error_page_used {
        if let Some(flow) = error_page(r, status) {
            match flow {
                Flow::Done => return,
                Flow::Status(s) => {
                    r.error_page_used = true;
                    return send(r, s);
                }
                _ => {}
            }
        }
    }
    send_builtin(r, status);
}

fn send_builtin(r: &mut Request, status: u16) {
    let tokens = r.core_loc().server_tokens.unwrap_or(ServerTokens::On);
    // A special response answered by an error page's own location is that
    // location's answer (nginx's special response sets `err_status`).
    if r.err_status != 0 && status >= 300 {
        r.err_status = status;
    }
    // The challenge of a 401 stays with its page (nginx keeps it in its
    // own `www_authenticate` field, which an error page does not clear).
    r.headers_out.headers.retain(|(n, _)| status == 401 && n.eq_ignore_ascii_case(b"www-authenticate"));
    r.headers_out.location = r.headers_out.location.take().filter(|_| (300..400).contains(&status));
    r.headers_out.last_modified = None;
    let wire_status = if status == 494 { 400 } else { status };
    match page(status, tokens) {
        Some(body) => {
            let _ = r.send_response(wire_status, Some(Bytes::from_static(b"text/html")), body);
        }
        None => {
            let _ = r.send_response(wire_status, None, Bytes::new());
        }
    }
}

/// Applies `error_page` for `status`; `None` when no entry matches. Once
/// a location with `error_page` handled an error, later errors of the same
/// request get the built-in page, unless `recursive_error_pages on` (as
/// nginx; the redirect limit still ends a loop with 500).
fn error_page(r: &mut Request, status: u16) -> Option<Flow> {
    let core = r.core_loc();
    let pages = core.error_pages.clone()?;
    if r.uri_changes == 0 {
        return None;
    }
    if core.recursive_error_pages != Some(true) {
        r.error_page_used = true;
    }
    let page = pages.iter().find(|p| p.codes.contains(&status))?;
    let target = page.target.eval(r);
    let overwrite = page.overwrite;
    if target.first() == Some(&b'@') {
        set_overwrite(r, status, overwrite);
        let name = String::from_utf8_lossy(&target).into_owned();
        return Some(phase::named_redirect(r, &name));
    }
    if target.first() == Some(&b'/') {
        set_overwrite(r, status, overwrite);
        let (uri, args) = match memchr::memchr(b'?', &target) {
            Some(q) => (target.slice(..q), target.slice(q + 1..)),
            None => (target.clone(), Bytes::new()),
        };
        if r.head.method != crate::parse::Method::Head {
            r.head.method = crate::parse::Method::Get;
            r.head.method_name = Bytes::from_static(b"GET");
        }
        return Some(phase::internal_redirect(r, uri, args));
    }
    // A URL: redirect the client.
    let code = match overwrite {
        Some(Some(c @ (301 | 302 | 303 | 307 | 308))) => c,
        _ => 302,
    };
    r.headers_out.location = Some(target);
    send_builtin(r, code);
    Some(Flow::Done)
}

fn set_overwrite(r: &mut Request, status: u16, overwrite: Option<Option<u16>>) {
    r.err_status = match overwrite {
        None => status,
        Some(Some(c)) => c,
        Some(None) => 0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_line_is_the_signature() {
        for t in [ServerTokens::Off, ServerTokens::On, ServerTokens::Build] {
            assert_eq!(server_line(t), format!("Server: {}\r\n", server_signature(t)).as_bytes());
        }
    }

    #[test]
    fn pages_read_like_nginx() {
        let p = page(404, ServerTokens::Off).unwrap();
        assert_eq!(
            &p[..],
            b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n"
        );
        assert!(page(200, ServerTokens::On).is_none());
        let p = page(401, ServerTokens::Off).unwrap();
        assert!(std::str::from_utf8(&p).unwrap().contains("<title>401 Authorization Required</title>"));
        let p = page(494, ServerTokens::On).unwrap();
        assert!(std::str::from_utf8(&p).unwrap().contains("Request Header Or Cookie Too Large"));
    }
}
