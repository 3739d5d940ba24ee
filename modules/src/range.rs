//! The range module: byte ranges (`Range`, `If-Range`), as nginx's
//! `ngx_http_range_header_filter_module` and `ngx_http_range_body_filter_module`.
//!
//! ```text
//! location /video/ { max_ranges 1; }     # default: unlimited; 0 disables ranges
//! ```
//!
//! A header filter and a body filter. They act only on 200 responses of
//! known length whose handler allowed ranges with [`allow`] (nginx's
//! `r->allow_ranges`; the static module does). Such a response gets
//! `Accept-Ranges: bytes` unless it answers a satisfiable `Range`:
//!
//! * one range (`bytes=0-9`, `bytes=-5`, `bytes=5-`): 206 with
//!   `Content-Range: bytes 0-9/LEN` and the slice as body;
//! * several: 206 `multipart/byteranges; boundary=00000000000000000001`, each
//!   part `CRLF --BOUNDARY CRLF Content-Type: T CRLF Content-Range: bytes
//!   S-E/LEN CRLF CRLF DATA`, closed by `CRLF --BOUNDARY-- CRLF`;
//! * no satisfiable range, or a malformed header: 416 with
//!   `Content-Range: bytes */LEN` and the built-in page;
//! * more ranges than `max_ranges`, a range starting at 0 that is empty,
//!   ranges adding up to more than the response, or an `If-Range` that does
//!   not match the `ETag` (a value ending in `"`) or `Last-Modified` (a
//!   date): the whole 200 response.
//!
//! Bodies are sliced without copying: file regions become shorter file
//! regions (still sent with `sendfile`), memory bufs are split by reference.
//! Per-request state: the handler's "allowed" (`Request::allow_ranges`),
//! then ([`RangeCtx`], under [`KEY`]) the parsed ranges and the body offset
//! reached. One range
//! streams (each buf is trimmed as it passes); several ranges hold the
//! handler's bufs (references, not copies) until `last_buf`, since parts may
//! come in any order. Not done: `error_page` for the 416 (the built-in page
//! is sent); ranges of subrequests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_core::conf::directive::{number, Args, Contexts as C, Directive, Level};
use sluice_core::{Buf, Chain};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextBody,
    NextHeader, PostConf, Request,
};

use crate::not_modified::{epoch_secs, finalize_with_page};

/// Location conf.
#[derive(Debug, Default)]
pub struct RangeLocConf {
    /// `max_ranges`; unset means unlimited.
    pub max_ranges: Option<u64>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), RangeLocConf> = ConfKey::new();

/// The range module: the `max_ranges` directive and the header filter
/// (nginx's `ngx_http_range_header_filter_module`).
#[derive(Debug)]
pub struct RangeModule;

/// The range body filter, a module of its own so that it can sit higher in
/// the body chain than the header filter sits in the header chain (nginx's
/// `ngx_http_range_body_filter_module`): it slices the handler's bytes
/// before other filters (charset) transform them.
#[derive(Debug)]
pub struct RangeBodyModule;

/// The body module's key (no conf; the state lives under [`KEY`]).
pub static BODY_KEY: ConfKey<(), (), ()> = ConfKey::new();

/// One satisfiable range: `[start, end)` of the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What the header filter decided about a `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Serve these ranges (206).
    Ranges(Vec<ByteRange>),
    /// Serve the whole response (200).
    Whole,
    /// 416.
    NotSatisfiable,
}

/// The per-request state.
#[derive(Debug)]
pub enum RangeCtx {
    /// One range; `offset` is how much of the body went by.
    Single {
        /// The range.
        range: ByteRange,
        /// Body bytes seen so far.
        offset: u64,
    },
    /// Several ranges; the body is held until `last_buf`. Boxed: it is
    /// large and rare.
    Multi(Box<Multipart>),
    /// Done with this response (416 sent, or the multipart body went out).
    Done,
}

/// The state of a multipart (several ranges) response.
#[derive(Debug)]
pub struct Multipart {
    /// The ranges, in the client's order.
    pub ranges: Vec<ByteRange>,
    /// `CRLF --B CRLF Content-Type: T CRLF Content-Range: bytes `.
    pub part_head: Bytes,
    /// `S-E/LEN CRLF CRLF` per range.
    pub part_ranges: Vec<Bytes>,
    /// `CRLF --B-- CRLF`.
    pub tail: Bytes,
    /// The body so far (references, not copies).
    pub held: Chain,
}

/// Marks the response of `r` as one that may be served in ranges (nginx's
/// `r->allow_ranges = 1`). A content handler calls it before `send_header`.
pub fn allow(r: &mut Request) {
    r.allow_ranges = true;
}

/// Parses the value after `bytes=` as nginx does (spaces allowed around
/// numbers and dashes, `,` between ranges). `max_ranges` of `None` is
/// unlimited.
pub fn parse(spec: &[u8], len: u64, max_ranges: Option<u64>) -> Parsed {
    let mut p = Cursor { s: spec, i: 0 };
    let mut ranges = Vec::new();
    let mut size: u64 = 0;
    let mut left = max_ranges.unwrap_or(i32::MAX as u64);
    loop {
        p.skip_spaces();
        let (start, end) = if p.peek() != b'-' {
            let Some(start) = p.number() else {
                return Parsed::NotSatisfiable;
            };
            p.skip_spaces();
            if p.next() != b'-' {
                return Parsed::NotSatisfiable;
            }
            p.skip_spaces();
            if matches!(p.peek(), b',' | 0) {
                (start, len)
            } else {
                match p.last_pos(len) {
                    Some(end) => (start, end),
                    None => return Parsed::NotSatisfiable,
                }
            }
        } else {
            p.i += 1;
            let Some(n) = p.number() else {
                return Parsed::NotSatisfiable;
            };
            p.skip_spaces();
            if !matches!(p.peek(), b',' | 0) {
                return Parsed::NotSatisfiable;
            }
            (len.saturating_sub(n), len)
        };
        if start < end {
            ranges.push(ByteRange { start, end });
            size = match size.checked_add(end - start) {
                Some(s) if s <= i64::MAX as u64 => s,
                _ => return Parsed::NotSatisfiable,
            };
            if left == 0 {
                return Parsed::Whole;
            }
            left -= 1;
        } else if start == 0 {
            return Parsed::Whole;
        }
        if p.next() != b',' {
            break;
        }
    }
    match ranges.len() {
        0 => Parsed::NotSatisfiable,
        1 => Parsed::Ranges(ranges),
        n => {
            // Overlapping ranges that add up to more than the body are an
            // attack on bandwidth; so is a swarm of tiny ranges when the
            // count is unlimited (each part carries ~256 bytes of heads).
            let small_swarm = max_ranges.is_none() && size + n as u64 * 256 > len + 4096;
            if size > len || small_swarm {
                Parsed::Whole
            } else {
                Parsed::Ranges(ranges)
            }
        }
    }
}

/// A byte cursor where the end reads as NUL, as nginx's parser sees it.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u8 {
        let c = self.peek();
        self.i += 1;
        c
    }

    fn skip_spaces(&mut self) {
        while self.peek() == b' ' {
            self.i += 1;
        }
    }

    /// One or more digits, within `off_t`.
    fn number(&mut self) -> Option<u64> {
        if !self.peek().is_ascii_digit() {
            return None;
        }
        let mut n: u64 = 0;
        while self.peek().is_ascii_digit() {
            n = n.checked_mul(10)?.checked_add(u64::from(self.next() - b'0'))?;
            if n > i64::MAX as u64 {
                return None;
            }
        }
        Some(n)
    }

    /// The last-byte-pos of `first-last`, turned into an exclusive end
    /// clamped to the length.
    fn last_pos(&mut self, len: u64) -> Option<u64> {
        let last = self.number()?;
        self.skip_spaces();
        if !matches!(self.peek(), b',' | 0) {
            return None;
        }
        Some(if last >= len { len } else { last + 1 })
    }
}

/// The next multipart boundary number: nginx's `ngx_next_temp_number`,
/// a process-wide counter seeded from the clock and pid.
fn next_boundary() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if COUNTER.load(Ordering::Relaxed) == 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = (now.subsec_nanos() as u64 ^ u64::from(std::process::id()) << 16) % 1_000_000_000 + 1;
        let _ = COUNTER.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Builds the multipart state and sets the 206 head for several ranges.
fn multipart_head(r: &mut Request, ranges: Vec<ByteRange>, len: u64) -> RangeCtx {
    let boundary = format!("{:020}", next_boundary());
    let mut head = BytesMut::with_capacity(96);
    head.put_slice(b"\r\n--");
    head.put_slice(boundary.as_bytes());
    head.put_slice(b"\r\n");
    if let Some(ct) = r.headers_out.content_type.as_ref().filter(|ct| !ct.is_empty()) {
        head.put_slice(b"Content-Type: ");
        head.put_slice(ct);
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"Content-Range: bytes ");
    let part_head = head.freeze();
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let part_ranges: Vec<Bytes> =
        ranges.iter().map(|g| Bytes::from(format!("{}-{}/{}\r\n\r\n", g.start, g.end - 1, len))).collect();
    let body_len: u64 = tail.len() as u64
        + ranges
            .iter()
            .zip(&part_ranges)
            .map(|(g, pr)| part_head.len() as u64 + pr.len() as u64 + g.end - g.start)
            .sum::<u64>();
    r.headers_out.content_type = Some(Bytes::from(format!("multipart/byteranges; boundary={boundary}")));
    r.headers_out.content_length = Some(body_len);
    r.headers_out.remove("Content-Range");
    RangeCtx::Multi(Box::new(Multipart { ranges, part_head, part_ranges, tail, held: Chain::new() }))
}

/// Whether `If-Range` (absent, or matching the response) lets ranges apply.
fn if_range_holds(r: &Request) -> bool {
    let Some(ir) = r.header("If-Range") else {
        return true;
    };
    if ir.len() >= 2 && ir.last() == Some(&b'"') {
        return r.headers_out.get("ETag").is_some_and(|etag| etag == ir);
    }
    let Some(lm) = r.headers_out.last_modified else {
        return false;
    };
    let t = std::str::from_utf8(ir).ok().and_then(sluice_core::time::parse_http_date);
    t.map(epoch_secs) == Some(epoch_secs(lm))
}

/// The header filter.
struct RangeHeaderFilter;

impl HeaderFilter for RangeHeaderFilter {
    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let allowed = r.allow_ranges;
        let len = match r.headers_out.content_length {
            Some(len) if allowed && r.headers_out.status == 200 && r.head.version >= (1, 0) => len,
            _ => return next.call(r),
        };
        let max_ranges = r.loc_conf(&KEY).max_ranges;
        if max_ranges == Some(0) {
            return next.call(r);
        }
        let spec = match r.header("Range") {
            Some(v) if v.len() >= 7 && v[..6].eq_ignore_ascii_case(b"bytes=") && if_range_holds(r) => v.slice(6..),
            _ => return accept_ranges(r, next),
        };
        match parse(&spec, len, max_ranges) {
            Parsed::Whole => accept_ranges(r, next),
            Parsed::NotSatisfiable => {
                r.set_ctx(&KEY, RangeCtx::Done);
                r.headers_out.remove("Content-Range");
                r.headers_out.add(Bytes::from_static(b"Content-Range"), Bytes::from(format!("bytes */{len}")));
                finalize_with_page(r, 416, next, false)
            }
            Parsed::Ranges(ranges) => {
                r.headers_out.status = 206;
                let ctx = if let [range] = ranges[..] {
                    r.headers_out.remove("Content-Range");
                    let value = format!("bytes {}-{}/{}", range.start, range.end - 1, len);
                    r.headers_out.add(Bytes::from_static(b"Content-Range"), Bytes::from(value));
                    r.headers_out.content_length = Some(range.end - range.start);
                    RangeCtx::Single { range, offset: 0 }
                } else {
                    multipart_head(r, ranges, len)
                };
                r.set_ctx(&KEY, ctx);
                next.call(r)
            }
        }
    }
}

fn accept_ranges(r: &mut Request, next: NextHeader<'_>) -> FilterResult {
    r.headers_out.add(Bytes::from_static(b"Accept-Ranges"), Bytes::from_static(b"bytes"));
    next.call(r)
}

/// Trims a chain passing by to `range`; `offset` is the body position of
/// its first byte and is advanced. The buf holding the range's end gets
/// `last_buf`; bufs after it (flag-only ones included) are dropped.
pub fn slice_single(chain: Chain, range: ByteRange, offset: &mut u64) -> Chain {
    let mut out = Chain::new();
    for mut b in chain {
        let start = *offset;
        let last = start + b.len();
        *offset = last;
        if b.is_empty() {
            if range.end > start {
                out.push(b);
            }
            continue;
        }
        if range.end <= start || range.start >= last {
            continue;
        }
        if range.start > start {
            b.advance(range.start - start);
        }
        if range.end <= last {
            let mut keep = b.split_to(b.len() - (last - range.end));
            keep.flush = b.flush;
            keep.last_buf = true;
            out.push(keep);
            continue;
        }
        out.push(b);
    }
    out
}

/// The bytes `[start, end)` of a held body, as new bufs pointing into it.
pub fn sub_chain(body: &Chain, start: u64, end: u64) -> Chain {
    let mut out = Chain::new();
    let mut pos = 0;
    for b in body {
        let (from, to) = (pos, pos + b.len());
        pos = to;
        if b.is_empty() || to <= start || from >= end {
            continue;
        }
        let mut part = b.clone();
        part.flush = false;
        part.last_buf = false;
        part.last_in_chain = false;
        if start > from {
            part.advance(start - from);
        }
        if end < to {
            let keep = part.len() - (to - end);
            part = part.split_to(keep);
        }
        out.push(part);
    }
    out
}

/// The multipart body for a complete held body.
fn multipart_body(m: &Multipart) -> Chain {
    let Multipart { ranges, part_head, part_ranges, tail, held } = m;
    let mut out = Chain::new();
    for (g, pr) in ranges.iter().zip(part_ranges) {
        out.push(Buf::mem(part_head.clone()));
        out.push(Buf::mem(pr.clone()));
        out.append(sub_chain(held, g.start, g.end));
    }
    out.push(Buf::mem(tail.clone()).with_last());
    out
}

/// The body filter.
struct RangeBodyFilter;

impl BodyFilter for RangeBodyFilter {
    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        let out = match r.ctx_mut::<_, _, _, RangeCtx>(&KEY) {
            Some(RangeCtx::Single { range, offset }) => {
                // Stays in this state to the end: whatever comes after the
                // range is dropped.
                slice_single(chain, *range, offset)
            }
            Some(RangeCtx::Multi(m)) => {
                let last = chain.is_last();
                m.held.append(chain);
                if !last {
                    return Ok(sluice_http::FilterStatus::Ok);
                }
                let out = multipart_body(m);
                r.set_ctx(&KEY, RangeCtx::Done);
                out
            }
            _ => chain,
        };
        next.call(r, out)
    }
}

impl HttpModule for RangeModule {
    fn name(&self) -> &'static str {
        "range"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "max_ranges",
            C::HTTP_ANY,
            Args::TAKE1,
            Level::Loc,
            number(|c: &mut RangeLocConf| &mut c.max_ranges),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(RangeLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &RangeLocConf = downcast(parent);
        let c: &mut RangeLocConf = downcast_mut(child);
        c.max_ranges = c.max_ranges.or(p.max_ranges);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(RangeHeaderFilter));
        Ok(())
    }
}

impl HttpModule for RangeBodyModule {
    fn name(&self) -> &'static str {
        "range_body"
    }

    fn index(&self) -> &'static ModuleIndex {
        BODY_KEY.index()
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_body_filter(Arc::new(RangeBodyFilter));
        Ok(())
    }
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
