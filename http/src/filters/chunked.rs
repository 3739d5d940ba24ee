//! The chunked filter: frames bodies of unknown length for HTTP/1.1.
//!
//! Header: for an HTTP/1.1 response with no Content-Length (or with trailers
//! to send), a status that has a body, and `chunked_transfer_encoding on`,
//! it chooses `Transfer-Encoding: chunked`; for HTTP/1.0 such a body ends
//! with the connection, so keep-alive is turned off.
//!
//! Body: each chain with payload goes on as a size line, the payload bufs
//! untouched (never copied), and a CRLF; `last_buf` becomes `0\r\n`,
//! the trailers, and `\r\n`.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_core::{Buf, Chain};

use crate::module::{BodyFilter, FilterResult, HeaderFilter, NextBody, NextHeader};
use crate::request::Request;

/// The chunked filter (both halves).
#[derive(Debug)]
pub struct ChunkedFilter;

fn has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

impl HeaderFilter for ChunkedFilter {
    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let status = r.headers_out.status;
        if r.header_only || !has_body(status) || r.head.version < (1, 0) {
            return next.call(r);
        }
        let trailers = !r.headers_out.trailers.is_empty();
        if r.headers_out.content_length.is_none() || trailers {
            if r.head.version >= (1, 1) && r.core_loc().chunked_transfer_encoding.unwrap_or(true) {
                r.headers_out.chunked = true;
                r.headers_out.content_length = None;
            } else if r.headers_out.content_length.is_none() {
                r.keepalive = false;
            } else {
                // Trailers cannot go out without chunked framing.
                r.headers_out.trailers.clear();
            }
        }
        next.call(r)
    }
}

/// The size line of a chunk: hex length and CRLF.
pub fn size_line(len: u64) -> Bytes {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // At most 16 hex digits and CRLF, formatted on the stack: one
    // allocation per chunk, for the returned bytes.
    let mut line = [0u8; 18];
    let mut start = 16;
    let mut n = len;
    loop {
        start -= 1;
        line[start] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    line[16] = b'\r';
    line[17] = b'\n';
    Bytes::copy_from_slice(&line[start..])
}

fn last_chunk(r: &Request) -> Bytes {
    if r.headers_out.trailers.is_empty() {
        return Bytes::from_static(b"0\r\n\r\n");
    }
    let mut b = BytesMut::from(&b"0\r\n"[..]);
    for (n, v) in &r.headers_out.trailers {
        b.put_slice(n);
        b.put_slice(b": ");
        b.put_slice(v);
        b.put_slice(b"\r\n");
    }
    b.put_slice(b"\r\n");
    b.freeze()
}

impl BodyFilter for ChunkedFilter {
    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        if !r.headers_out.chunked || r.header_only {
            return next.call(r, chain);
        }
        let out = frame(chain, || last_chunk(r));
        next.call(r, out)
    }
}

/// Frames one chain: a size line, the payload bufs as they are (the same
/// allocations, flags moved to a flag-only buf at the end), a CRLF, and on
/// `last_buf` the last chunk from `last_chunk`.
pub fn frame(chain: Chain, last_chunk: impl FnOnce() -> Bytes) -> Chain {
    let len = chain.len();
    let last = chain.is_last();
    let mut out = Chain::new();
    if len > 0 {
        out.push(Buf::mem(size_line(len)));
    }
    let mut flags = Buf::from_static(b"");
    for b in chain {
        flags.flush |= b.flush;
        flags.last_in_chain |= b.last_in_chain;
        if !b.is_empty() {
            let mut b = b;
            b.flush = false;
            b.last_buf = false;
            out.push(b);
        }
    }
    if len > 0 {
        out.push(Buf::from_static(b"\r\n"));
    }
    if last {
        out.push(Buf::mem(last_chunk()));
        flags.last_buf = true;
    }
    if flags.has_flags() {
        out.push(flags);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_reaches_the_next_filter_as_the_same_allocations() {
        let a = Bytes::from(vec![b'a'; 5000]);
        let b = Bytes::from_static(b"tail");
        let mut chain = Chain::new();
        chain.push(Buf::mem(a.clone()));
        chain.push(Buf::mem(b.clone()).with_last());
        let out = frame(chain, || Bytes::from_static(b"0\r\n\r\n"));
        let bufs = out.bufs();
        assert_eq!(bufs[0].as_bytes().map(|x| &x[..]), Some(&b"138c\r\n"[..]));
        // Not copied: the very same memory goes on.
        assert_eq!(bufs[1].as_bytes().unwrap().as_ptr(), a.as_ptr());
        assert_eq!(bufs[2].as_bytes().unwrap().as_ptr(), b.as_ptr());
        assert_eq!(out.to_vec().unwrap().len(), 6 + 5004 + 2 + 5);
        assert!(out.is_last());
    }

    #[test]
    fn size_lines() {
        assert_eq!(&size_line(0)[..], b"0\r\n");
        assert_eq!(&size_line(255)[..], b"ff\r\n");
        assert_eq!(&size_line(1 << 20)[..], b"100000\r\n");
        assert_eq!(&size_line(u64::MAX)[..], b"ffffffffffffffff\r\n");
        for n in [1u64, 9, 10, 15, 16, 4095, 4096, 123_456_789] {
            assert_eq!(size_line(n), Bytes::from(format!("{n:x}\r\n")));
        }
    }
}
