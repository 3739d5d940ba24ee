//! The header writer: the bottom header filter. It turns the response head
//! into bytes and queues them as the first output of the connection, so
//! head and first body bytes leave in one `writev`.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_core::Buf;

use crate::core_module::ServerTokens;
use crate::module::{FilterResult, FilterStatus, HeaderFilter, NextHeader};
use crate::request::Request;
use crate::special;

/// The header writer.
#[derive(Debug)]
pub struct HeaderWriter;

/// `n` in decimal, written at the end of `digits`: cheaper than `write!`,
/// which goes through the formatting machinery, for numbers written on
/// every response (modules use it for those they write per request too).
pub fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// Where the head is written before it is copied into the worker's arena:
/// a stack buffer that holds any usual head, so that each constant piece
/// is a copy the compiler writes inline (a `BytesMut::put_slice` call per
/// piece, with its capacity check and a `memcpy` call, was half the header
/// writer's cost). A head that outgrows it goes on on the heap.
struct HeadBytes {
    stack: [u8; HEAD_STACK],
    len: usize,
    /// Everything written, once the stack buffer was not enough.
    heap: Option<Vec<u8>>,
}

/// Bytes of head kept on the stack: a usual response head is about 200.
const HEAD_STACK: usize = 768;

impl HeadBytes {
    fn new() -> HeadBytes {
        HeadBytes { stack: [0; HEAD_STACK], len: 0, heap: None }
    }

    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        match self.stack.get_mut(self.len..self.len + s.len()) {
            Some(dst) if self.heap.is_none() => {
                dst.copy_from_slice(s);
                self.len += s.len();
            }
            _ => self.spill(s),
        }
    }

    #[cold]
    fn spill(&mut self, s: &[u8]) {
        let stack = &self.stack[..self.len];
        self.heap.get_or_insert_with(|| stack.to_vec()).extend_from_slice(s);
    }

    fn put_decimal(&mut self, n: u64) {
        self.put(decimal(n, &mut [0; 20]));
    }

    /// A header line whose name, with its `": "`, is a constant.
    #[inline(always)]
    fn put_header(&mut self, name_colon: &'static [u8], value: &[u8]) {
        self.put(name_colon);
        self.put(value);
        self.put(b"\r\n");
    }

    fn put_field(&mut self, name: &[u8], value: &[u8]) {
        self.put(name);
        self.put(b": ");
        self.put(value);
        self.put(b"\r\n");
    }

    fn as_slice(&self) -> &[u8] {
        self.heap.as_deref().unwrap_or(&self.stack[..self.len])
    }
}

/// Makes a relative `Location` absolute as `absolute_redirect`,
/// `server_name_in_redirect` and `port_in_redirect` say.
fn absolute_location(r: &Request, loc: &Bytes) -> Bytes {
    let core = r.core_loc();
    if loc.first() != Some(&b'/') || !core.absolute_redirect.unwrap_or(true) {
        return loc.clone();
    }
    // As nginx: the server name if asked for, else the Host the client
    // sent, else the local address the connection came in on.
    let local_ip = match r.conn.local.ip() {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let host: &[u8] = if core.server_name_in_redirect.unwrap_or(false) && !r.server.name.is_empty() {
        r.server.name.as_bytes()
    } else if !r.host.is_empty() {
        &r.host
    } else {
        local_ip.as_bytes()
    };
    let mut s = String::from("http://");
    s.push_str(&String::from_utf8_lossy(host));
    let port = r.conn.local.port();
    if core.port_in_redirect.unwrap_or(true) && port != 80 {
        let _ = write!(s, ":{port}");
    }
    let mut b = BytesMut::from(s.as_bytes());
    b.put_slice(loc);
    b.freeze()
}

impl HeaderFilter for HeaderWriter {
    fn header_filter(&self, r: &mut Request, _next: NextHeader<'_>) -> FilterResult {
        if r.head.version < (1, 0) {
            // HTTP/0.9: no head at all.
            return Ok(FilterStatus::Ok);
        }
        // An error page answers with the error's status (or the one
        // `error_page ... =code` gave), whatever its location answered, as
        // nginx's send_header does.
        if r.err_status != 0 {
            r.headers_out.status = r.err_status;
        }
        // As nginx: 204 carries no body, type or length; 304 no body.
        if r.headers_out.status == 204 {
            r.header_only = true;
            r.headers_out.content_type = None;
            r.headers_out.content_length = None;
            r.headers_out.last_modified = None;
        } else if r.headers_out.status == 304 {
            r.header_only = true;
        }
        let mut written = HeadBytes::new();
        write_head(r, &mut written);
        // Kept in the worker's head arena: no allocation per response.
        let head = crate::head_buf::copy(written.as_slice());
        r.header_bytes = head.len() as u64;
        r.conn.out.push(Buf::mem(head));
        Ok(FilterStatus::Ok)
    }
}

/// The status line and headers, up to and including the empty line.
fn write_head(r: &Request, b: &mut HeadBytes) {
    let status = r.headers_out.status;
    let ho = &r.headers_out;
    let reason = special::reason(status);
    // Written straight into the buffer: no temporary strings per response.
    match status {
        // The commonest, whole (one copy instead of five).
        200 => b.put(b"HTTP/1.1 200 OK\r\n"),
        _ => {
            b.put(b"HTTP/1.1 ");
            b.put_decimal(u64::from(status));
            // As nginx: the space stays when the code has no reason phrase.
            b.put(b" ");
            b.put(reason.as_bytes());
            b.put(b"\r\n");
        }
    }
    let tokens = r.core_loc().server_tokens.unwrap_or(ServerTokens::On);
    // A handler's own Server or Date (a proxied response with
    // `proxy_pass_header`) replaces the server's, as in nginx.
    let has = |name: &[u8]| r.headers_out.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has(b"server") {
        b.put(special::server_line(tokens));
    }
    if !has(b"date") {
        sluice_core::time::with_cached_http_date(|d| b.put_header(b"Date: ", d));
    }
    if let Some(ct) = &ho.content_type {
        b.put_header(b"Content-Type: ", ct);
    }
    if let Some(n) = ho.content_length {
        b.put(b"Content-Length: ");
        b.put_decimal(n);
        b.put(b"\r\n");
    }
    if let Some(t) = ho.last_modified {
        match sluice_core::time::http_date_bytes(t) {
            Some(date) => b.put_header(b"Last-Modified: ", &date),
            None => b.put_header(b"Last-Modified: ", sluice_core::time::http_date(t).as_bytes()),
        }
    }
    if let Some(loc) = &ho.location {
        let abs = absolute_location(r, loc);
        b.put_header(b"Location: ", &abs);
    }
    if ho.chunked {
        b.put(b"Transfer-Encoding: chunked\r\n");
    }
    if status == 101 {
        b.put(b"Connection: upgrade\r\n");
    } else if r.keepalive {
        b.put(b"Connection: keep-alive\r\n");
        if let Some((_, Some(h))) = r.core_loc().keepalive_timeout {
            b.put(b"Keep-Alive: timeout=");
            b.put_decimal(h.as_secs());
            b.put(b"\r\n");
        }
    } else {
        b.put(b"Connection: close\r\n");
    }
    for (n, v) in &r.headers_out.headers {
        b.put_field(n, v);
    }
    b.put(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_longer_than_the_stack_buffer_goes_on_whole() {
        let mut b = HeadBytes::new();
        let mut want = Vec::new();
        for i in 0..100u64 {
            b.put_field(b"X-Field", i.to_string().as_bytes());
            b.put_decimal(i);
            want.extend_from_slice(format!("X-Field: {i}\r\n{i}").as_bytes());
            assert_eq!(b.as_slice(), &want[..], "after field {i}");
        }
        assert!(want.len() > HEAD_STACK && b.heap.is_some());
    }

    #[test]
    fn decimals_as_written() {
        for n in [0u64, 7, 10, 200, 404, 1024, 99_999, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
