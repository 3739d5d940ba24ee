//! The request head: request line and header lines, read as nginx reads
//! them.
//!
//! [`HeadParser`] (or the one-shot [`parse_head`]) takes the bytes received
//! so far on a connection and answers "need more", a [`RequestHead`], or a
//! [`HeadError`] carrying nginx's status. It never touches a socket.
//!
//! What nginx accepts and refuses, kept here:
//! - empty lines before the request line are skipped; LF alone ends a line
//!   anywhere in the head;
//! - methods are `[A-Z_-]+`; versions are HTTP/1.x (any x up to 999, 1.2+
//!   behaves as 1.1) or HTTP/0.9 (no version, GET only); a major version
//!   above 1 is a 505; `OPTIONS *` and any other asterisk-form is a 400;
//! - targets are origin-form or absolute-form (`scheme://host[:port]` then
//!   `/path`, `?args` or nothing); CONNECT takes `host:port`;
//! - a header name byte other than letters, digits and `-` (and `_` when
//!   `underscores_in_headers` is on) makes the line invalid: it is dropped
//!   when `ignore_invalid_headers` is on and kept otherwise; controls and
//!   spaces in a name, a line starting with a space or tab (obsolete line
//!   folding), a name starting with `:`, and NUL anywhere are 400s;
//! - a second Host, Content-Length, Transfer-Encoding, Expect,
//!   Authorization, Proxy-Authorization, Content-Range or If-* conditional
//!   is a 400, and so is an invalid Host, when the line arrives.
//!
//! Sizes follow nginx's buffers exactly: the head first goes into one
//! `client_header_buffer_size` buffer; when a buffer fills in the middle of
//! a line, that line moves to one of `large_client_header_buffers` (count ×
//! size). A request line that cannot fit one large buffer is a 414, a
//! header line that cannot, or a head needing more large buffers than
//! allowed, is nginx's 494. Empty lines before the request line cost
//! nothing (nginx reuses the buffer).
//!
//! Checks nginx makes once the whole head is in — Host required for
//! HTTP/1.1, body framing, methods it refuses — are [`host_header`],
//! [`body_framing`] and [`method_allowed`]; call them in that order to
//! get nginx's precedence.

mod line;
mod uri;

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use sluice_core::reuse::Spares;

use line::{scan_header_line, scan_request_line, Field, HeaderLine, RequestLine, Stop};
pub use uri::{
    escape_uri, normalize_uri, percent_encode, uri_escapes, validate_host, validate_host_bytes, validate_host_port,
    ValidHost,
};

/// Head size limits and header policies, named after nginx's directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// `client_header_buffer_size` (1k): the first buffer.
    pub header_buffer: usize,
    /// `large_client_header_buffers` size (8k): the longest line.
    pub large_buffer: usize,
    /// `large_client_header_buffers` number (4).
    pub large_count: usize,
    /// `underscores_in_headers` (off).
    pub underscores_in_headers: bool,
    /// `ignore_invalid_headers` (on).
    pub ignore_invalid_headers: bool,
    /// `merge_slashes` (on).
    pub merge_slashes: bool,
    /// `max_headers` (1000): more header lines are a 494.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            header_buffer: 1024,
            large_buffer: 8192,
            large_count: 4,
            underscores_in_headers: false,
            ignore_invalid_headers: true,
            merge_slashes: true,
            max_headers: 1000,
        }
    }
}

/// The request method; `Other` for names nginx has no constant for
/// (`method_name` has the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// WebDAV MKCOL.
    Mkcol,
    /// WebDAV COPY.
    Copy,
    /// WebDAV MOVE.
    Move,
    /// OPTIONS.
    Options,
    /// WebDAV PROPFIND.
    Propfind,
    /// WebDAV PROPPATCH.
    Proppatch,
    /// WebDAV LOCK.
    Lock,
    /// WebDAV UNLOCK.
    Unlock,
    /// PATCH.
    Patch,
    /// TRACE (refused with 405 by [`method_allowed`]).
    Trace,
    /// CONNECT (refused with 405 by [`method_allowed`]).
    Connect,
    /// Any other `[A-Z_-]+` name.
    Other,
}

/// The known methods and their names, commonest first (both look-ups
/// below scan it).
const METHOD_NAMES: [(Method, &[u8]); 16] = [
    (Method::Get, b"GET"),
    (Method::Head, b"HEAD"),
    (Method::Post, b"POST"),
    (Method::Put, b"PUT"),
    (Method::Delete, b"DELETE"),
    (Method::Options, b"OPTIONS"),
    (Method::Patch, b"PATCH"),
    (Method::Mkcol, b"MKCOL"),
    (Method::Copy, b"COPY"),
    (Method::Move, b"MOVE"),
    (Method::Propfind, b"PROPFIND"),
    (Method::Proppatch, b"PROPPATCH"),
    (Method::Lock, b"LOCK"),
    (Method::Unlock, b"UNLOCK"),
    (Method::Trace, b"TRACE"),
    (Method::Connect, b"CONNECT"),
];

impl Method {
    /// The method for a name as sent (names are case-sensitive).
    pub fn from_name(name: &[u8]) -> Method {
        METHOD_NAMES.iter().find(|(_, n)| *n == name).map_or(Method::Other, |(m, _)| *m)
    }

    /// The name of a known method, as a static string (`None` for
    /// `Other`).
    pub fn name(self) -> Option<&'static [u8]> {
        METHOD_NAMES.iter().find(|(m, _)| *m == self).map(|(_, n)| *n)
    }
}

/// One header field as received; compare names case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name, as sent.
    pub name: Bytes,
    /// The value without leading and trailing spaces.
    pub value: Bytes,
}

thread_local! {
    /// Allocations of finished requests' heads, for the next ones
    /// (see `sluice_core::reuse`).
    static HEAD_BOXES: Spares<Box<MaybeUninit<RequestHead>>> = const { Spares::new(64) };
}

/// Drops a finished request's head, keeping its allocation for the next
/// head this worker parses.
pub(crate) fn recycle_head(head: Box<RequestHead>) {
    HEAD_BOXES.with(|b| b.recycle(head));
}

/// A parsed request head. All byte strings share one copy of the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The method as sent.
    pub method_name: Bytes,
    /// (1,1), (1,0), (0,9); minors above 255 read as 255.
    pub version: (u8, u8),
    /// The head as received, which the ranges below index: kept whole, so
    /// the request line and the target as sent are sliced off only when
    /// asked for (each shared slice is a reference count to take and drop).
    raw: Bytes,
    request_line: Range<usize>,
    /// `None`: the target had no path.
    unparsed_uri: Option<Range<usize>>,
    /// The scheme of an absolute-form target.
    pub schema: Option<Bytes>,
    /// The authority of an absolute-form or CONNECT target, as sent
    /// (port included); [`host_header`] validates it.
    pub host_in_uri: Option<Bytes>,
    /// The decoded, normalised path (nginx's `r->uri`, `$uri`).
    pub uri: Bytes,
    /// The arguments after `?`, not decoded (`$args`).
    pub args: Bytes,
    /// The extension of the last path segment (`$uri`'s, nginx's exten).
    pub exten: Bytes,
    /// The header fields kept, in order.
    pub headers: Vec<Header>,
    /// The Host header's name, validated and lowercased, without port and
    /// trailing dot (set by the parser; `host_header` falls back to
    /// checking the header itself for heads built otherwise).
    pub host_header: Option<Bytes>,
    /// Bytes of the head, leading empty lines and the final empty line
    /// included; pipelined bytes start here.
    pub head_len: usize,
    /// The request carries `Expect: 100-continue` (any case), the one
    /// expectation a server answers, with "100 Continue" (nginx compares
    /// the whole value the same way).
    pub expects_continue: bool,
}

impl RequestHead {
    /// The request line without its line end (`$request`).
    pub fn request_line(&self) -> &[u8] {
        &self.raw[self.request_line.clone()]
    }

    /// [`request_line`](Self::request_line) as shared bytes.
    pub fn request_line_bytes(&self) -> Bytes {
        self.raw.slice(self.request_line.clone())
    }

    /// The target's path and arguments as sent (`$request_uri`); for an
    /// absolute-form target the part from the path on, "/" when there is
    /// no path.
    pub fn unparsed_uri(&self) -> &[u8] {
        match &self.unparsed_uri {
            Some(r) => &self.raw[r.clone()],
            None => b"/",
        }
    }

    /// [`unparsed_uri`](Self::unparsed_uri) as shared bytes.
    pub fn unparsed_uri_bytes(&self) -> Bytes {
        match &self.unparsed_uri {
            Some(r) => self.raw.slice(r.clone()),
            None => Bytes::from_static(b"/"),
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name.as_bytes())).map(|h| &h.value)
    }

    /// All headers with this name (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name.as_bytes())).map(|h| &h.value)
    }
}

/// Why a head was refused; each maps to nginx's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// 400, with the reason nginx logs.
    BadRequest(&'static str),
    /// 414: the request line does not fit a large header buffer.
    UriTooLong,
    /// nginx's 494 "Request Header Or Cookie Too Large", sent as 400.
    HeaderTooLarge,
    /// 505: a major version above 1.
    VersionNotSupported,
    /// 501: a Transfer-Encoding other than "chunked".
    NotImplemented,
    /// 405: TRACE, or CONNECT, which this server does not proxy.
    NotAllowed(&'static str),
}

impl HeadError {
    /// The status nginx finalizes the request with (494 is nginx's own;
    /// its error page goes out with status 400).
    pub fn status(&self) -> u16 {
        match self {
            HeadError::BadRequest(_) => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeaderTooLarge => 494,
            HeadError::VersionNotSupported => 505,
            HeadError::NotImplemented => 501,
            HeadError::NotAllowed(_) => 405,
        }
    }

    /// The line for the error log (at `info`, as nginx logs client errors).
    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::BadRequest(r) | HeadError::NotAllowed(r) => r,
            HeadError::UriTooLong => "client sent too long URI",
            HeadError::HeaderTooLarge => "client sent too large request or too long header line",
            HeadError::VersionNotSupported => "client sent invalid version",
            HeadError::NotImplemented => "client sent unknown \"Transfer-Encoding\"",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HeadError {}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Content-Length bytes (possibly 0).
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
}

/// Headers nginx allows once; a second one is a 400 when it arrives.
const UNIQUE_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "if-modified-since",
    "if-unmodified-since",
    "if-match",
    "if-none-match",
    "content-range",
    "if-range",
    "expect",
    "authorization",
    "proxy-authorization",
];

/// `expect`'s place in [`UNIQUE_HEADERS`].
const EXPECT: usize = 9;

fn unique_index(name: &[u8]) -> Option<usize> {
    // Most names are none of them, and their length says so at once.
    if !matches!(name.len(), 4 | 6 | 8 | 13 | 14 | 17 | 19) {
        return None;
    }
    UNIQUE_HEADERS.iter().position(|u| u.as_bytes().eq_ignore_ascii_case(name))
}

/// nginx's header buffers, as positions in the byte stream: the current
/// buffer holds `[start, start + cap)`.
#[derive(Debug, Clone)]
struct HeadBuffers {
    start: usize,
    cap: usize,
    large_used: usize,
}

impl HeadBuffers {
    fn end(&self) -> usize {
        self.start.saturating_add(self.cap)
    }

    /// The current buffer is full and the line from `line_start` is not
    /// finished: move to a large buffer, as nginx's
    /// `ngx_http_alloc_large_header_buffer` does, or fail.
    fn grow(&mut self, line_start: usize, request_line: bool, l: &HeadLimits) -> Result<(), HeadError> {
        let too_large = if request_line { HeadError::UriTooLong } else { HeadError::HeaderTooLarge };
        // Bytes of the unfinished line that must be copied over; none
        // when the buffer ended exactly at a line boundary.
        let partial = self.end().saturating_sub(line_start);
        if (partial > 0 && partial >= l.large_buffer) || self.large_used >= l.large_count {
            return Err(too_large);
        }
        self.large_used += 1;
        self.start = line_start;
        self.cap = l.large_buffer.max(1);
        Ok(())
    }
}

/// Reads a head incrementally: call [`HeadParser::parse`] with all the
/// bytes received so far (the same growing buffer each time). Lines already
/// complete are not scanned again.
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: HeadLimits,
    bufs: HeadBuffers,
    /// How far leading empty lines have been skipped.
    skipped: usize,
    start: Option<usize>,
    request: Option<(RequestLine, uri::Normalized)>,
    /// On the stack up to a typical browser's count: no allocation for most
    /// heads.
    fields: smallvec::SmallVec<[Field; 16]>,
    /// Start of the next header line.
    pos: usize,
    seen_unique: u16,
    failed: Option<HeadError>,
    /// The Host header's value range and the length of its name part, from
    /// the check made when the line arrived (kept so the host is not
    /// checked twice).
    host: Option<(std::ops::Range<usize>, usize)>,
}

impl HeadParser {
    /// A parser for a new request.
    pub fn new(limits: &HeadLimits) -> Self {
        HeadParser {
            limits: *limits,
            bufs: HeadBuffers { start: 0, cap: limits.header_buffer.max(1), large_used: 0 },
            skipped: 0,
            start: None,
            request: None,
            fields: smallvec::SmallVec::new(),
            pos: 0,
            seen_unique: 0,
            failed: None,
            host: None,
        }
    }

    /// `Ok(None)`: need more bytes. `buf` must be the same buffer as in
    /// earlier calls, possibly longer. Once it has returned an error it
    /// keeps returning it.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
        let Some(head_len) = self.head_len(buf)? else {
            return Ok(None);
        };
        // From the worker's arena: no allocation per request.
        let all = crate::head_buf::copy(&buf[..head_len]);
        Ok(Some(self.build(all)))
    }

    /// As [`parse`](Self::parse) over the bytes in `rbuf`; a complete head
    /// is split off its front (what follows stays in `rbuf`) and the
    /// head's strings point into that memory: nothing is copied.
    /// The head is boxed: it is moved from here onto the request, and a
    /// pointer moves for less than its 336 bytes.
    pub fn parse_from(&mut self, rbuf: &mut bytes::BytesMut) -> Result<Option<Box<RequestHead>>, HeadError> {
        let Some(head_len) = self.head_len(rbuf)? else {
            return Ok(None);
        };
        let head = self.build(rbuf.split_to(head_len).freeze());
        Ok(Some(match HEAD_BOXES.with(|b| b.take()) {
            Some(spare) => Box::write(spare, head),
            None => Box::new(head),
        }))
    }

    /// What can be kept of a head this parser refused (or gave up on as
    /// too large) in `buf`, so the refusal can be answered and logged as a
    /// request, as nginx answers and logs it: the request line and the
    /// header lines before the failing one when the request line was good;
    /// else only the line as sent, up to its end or the end of `buf`
    /// (`$request`), with an empty URI and no method or headers. Its
    /// version is 1.0: nothing about a refused head may ask for chunked
    /// framing or keep-alive.
    pub fn salvage(&self, buf: &[u8]) -> Box<RequestHead> {
        if self.request.is_some() {
            let mut head = self.build(Bytes::copy_from_slice(&buf[..self.pos.min(buf.len())]));
            head.version = (1, 0);
            head.expects_continue = false;
            return Box::new(head);
        }
        let start = self.start.unwrap_or(self.skipped).min(buf.len());
        let len = memchr::memchr2(b'\r', b'\n', &buf[start..]).unwrap_or(buf.len() - start);
        Box::new(RequestHead {
            method: Method::Other,
            method_name: Bytes::new(),
            version: (1, 0),
            raw: Bytes::copy_from_slice(&buf[start..start + len]),
            request_line: 0..len,
            unparsed_uri: Some(0..0),
            schema: None,
            host_in_uri: None,
            uri: Bytes::new(),
            args: Bytes::new(),
            exten: Bytes::new(),
            headers: Vec::new(),
            host_header: None,
            head_len: buf.len(),
            expects_continue: false,
        })
    }

    /// The head's length once its empty line is in.
    fn head_len(&mut self, buf: &[u8]) -> Result<Option<usize>, HeadError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.parse_inner(buf);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn parse_inner(&mut self, buf: &[u8]) -> Result<Option<usize>, HeadError> {
        let Some(start) = self.request_start(buf) else {
            return Ok(None);
        };
        if self.request.is_none() {
            let scan = |b: &[u8]| scan_request_line(b, start).map(|l| (l.next, l));
            let Some(line) = self.drive(buf, start, true, scan)? else {
                return Ok(None);
            };
            let target = self.check_request_line(buf, &line)?;
            self.pos = line.next;
            self.request = Some((line, target));
        }
        if self.request.as_ref().is_some_and(|(l, _)| l.version == (0, 9)) {
            return Ok(Some(self.pos));
        }
        loop {
            let pos = self.pos;
            let underscores = self.limits.underscores_in_headers;
            let scan = |b: &[u8]| {
                scan_header_line(b, pos, underscores).map(|h| {
                    let next = match &h {
                        HeaderLine::Field(f) => f.next,
                        HeaderLine::End { next } => *next,
                    };
                    (next, h)
                })
            };
            match self.drive(buf, pos, false, scan)? {
                None => return Ok(None),
                Some(HeaderLine::End { next }) => return Ok(Some(next)),
                Some(HeaderLine::Field(f)) => {
                    self.pos = f.next;
                    self.accept(buf, f)?;
                }
            }
        }
    }

    /// Skips empty lines before the request line; they never count against
    /// the buffers, since nginx starts its buffer over when only they
    /// filled it.
    fn request_start(&mut self, buf: &[u8]) -> Option<usize> {
        if self.start.is_some() {
            return self.start;
        }
        let from = self.skipped.min(buf.len());
        let Some(off) = buf[from..].iter().position(|&b| b != b'\r' && b != b'\n') else {
            self.skipped = buf.len();
            return None;
        };
        let start = from + off;
        let cap = self.bufs.cap;
        self.bufs.start += (start - self.bufs.start) / cap * cap;
        self.start = Some(start);
        self.start
    }

    /// Runs a line scan against the buffer limits: the scan's outcome
    /// counts only once the byte that decided it is inside a buffer; before
    /// that, a full buffer must first be replaced by a large one.
    fn drive<T>(
        &mut self,
        buf: &[u8],
        line_start: usize,
        request_line: bool,
        scan: impl FnOnce(&[u8]) -> Result<(usize, T), Stop>,
    ) -> Result<Option<T>, HeadError> {
        let outcome = scan(buf);
        let decided_at = match &outcome {
            Ok((next, _)) => *next,
            Err(Stop::Error(at, _)) => at + 1,
            Err(Stop::Incomplete) => usize::MAX,
        };
        while decided_at > self.bufs.end() {
            if buf.len() < self.bufs.end() {
                return Ok(None);
            }
            self.bufs.grow(line_start, request_line, &self.limits)?;
        }
        match outcome {
            Ok((_, t)) => Ok(Some(t)),
            Err(Stop::Error(_, e)) => Err(e),
            Err(Stop::Incomplete) => Ok(None),
        }
    }

    /// nginx's checks once the request line is in: HTTP/0.9 is GET only,
    /// the path must normalise, the host in the line must be valid.
    fn check_request_line(&self, buf: &[u8], line: &RequestLine) -> Result<uri::Normalized, HeadError> {
        if line.version == (0, 9) && line.method != Method::Get {
            return Err(HeadError::BadRequest("client sent invalid method in HTTP/0.9 request"));
        }
        let t = &line.target;
        let normalized = match &t.path {
            Some(p) => uri::normalize(&buf[p.clone()], t.empty_path, self.limits.merge_slashes)?,
            None => uri::Normalized { uri: Some(b"/".to_vec()), plain_len: 0, exten_start: None, args: None },
        };
        if let Some(h) = &t.host {
            uri::check_host(&buf[h.clone()])
                .map_err(|_| HeadError::BadRequest("client sent invalid host in request line"))?;
        }
        Ok(normalized)
    }

    /// A complete header line: drop it, refuse it, or keep it.
    fn accept(&mut self, buf: &[u8], f: Field) -> Result<(), HeadError> {
        if f.invalid && self.limits.ignore_invalid_headers {
            return Ok(());
        }
        if self.fields.len() >= self.limits.max_headers {
            return Err(HeadError::HeaderTooLarge);
        }
        if let Some(i) = unique_index(&buf[f.name.clone()]) {
            if self.seen_unique & (1 << i) != 0 {
                return Err(HeadError::BadRequest(if i == 0 {
                    "client sent duplicate host header"
                } else {
                    "client sent duplicate header line"
                }));
            }
            self.seen_unique |= 1 << i;
            if i == 0 {
                let (len, _) = uri::check_host(&buf[f.value.clone()])?;
                self.host = Some((f.value.clone(), len));
            }
        }
        self.fields.push(f);
        Ok(())
    }

    /// The head from `all`, exactly its bytes (the empty line included).
    fn build(&self, all: Bytes) -> RequestHead {
        let buf = &all[..];
        let head_len = all.len();
        let (line, norm) = self.request.as_ref().expect("request line parsed");
        let start = self.start.unwrap_or(0);
        let t = &line.target;
        let path = t.path.clone();
        let uri = match (&path, &norm.uri) {
            // The common case: nothing to decode or resolve, so the path
            // itself is the URI and needs no copy.
            (Some(p), None) => all.slice(p.start..p.start + norm.plain_len),
            // Changed by normalising, but it may still read as the start of
            // the path (a trailing `/.` dropped, say): no copy then either.
            (Some(p), Some(u)) if !t.empty_path && buf[p.start..].starts_with(u) => {
                all.slice(p.start..p.start + u.len())
            }
            (_, u) => Bytes::copy_from_slice(u.as_deref().unwrap_or_default()),
        };
        let args = match (&path, &norm.args) {
            (Some(p), Some(a)) => all.slice(p.start + a.start..p.start + a.end),
            _ => Bytes::new(),
        };
        let exten = norm.exten_start.map_or_else(Bytes::new, |s| uri.slice(s..));
        RequestHead {
            method: line.method,
            // A known name is static: no reference on the head to count.
            method_name: match line.method.name() {
                Some(name) => Bytes::from_static(name),
                None => all.slice(start..line.method_end),
            },
            version: line.version,
            request_line: start..line.text_end,
            unparsed_uri: path,
            schema: t.schema.clone().map(|r| all.slice(r)),
            host_in_uri: t.host.clone().map(|r| all.slice(r)),
            uri,
            args,
            exten,
            headers: {
                // A finished request's list, memory and all.
                let mut headers = crate::header_lists::request();
                headers.extend(self.fields.iter().map(|f| {
                    let name = match common_name(&buf[f.name.clone()]) {
                        Some(n) => Bytes::from_static(n),
                        None => all.slice(f.name.clone()),
                    };
                    Header { name, value: all.slice(f.value.clone()) }
                }));
                headers
            },
            host_header: self.host.as_ref().map(|(range, len)| {
                let name = &buf[range.start..range.start + len];
                if name.iter().any(u8::is_ascii_uppercase) {
                    Bytes::from(name.to_ascii_lowercase())
                } else {
                    all.slice(range.start..range.start + len)
                }
            }),
            head_len,
            expects_continue: self.seen_unique & (1 << EXPECT) != 0
                && self.fields.iter().any(|f| {
                    buf[f.name.clone()].eq_ignore_ascii_case(b"expect")
                        && buf[f.value.clone()].eq_ignore_ascii_case(b"100-continue")
                }),
            raw: all,
        }
    }
}

/// The header names most requests carry, spelled as clients send them. A
/// name sent exactly so is kept as a static string: no reference on the
/// head's shared copy to take and later drop (an atomic operation each).
fn common_name(name: &[u8]) -> Option<&'static [u8]> {
    let candidates: &[&'static [u8]] = match name.len() {
        4 => &[b"Host", b"host"],
        5 => &[b"Range"],
        6 => &[b"Accept", b"Cookie", b"Origin", b"Pragma", b"accept"],
        7 => &[b"Referer"],
        10 => &[b"User-Agent", b"Connection", b"user-agent", b"connection"],
        12 => &[b"Content-Type"],
        13 => &[b"Cache-Control", b"If-None-Match", b"Authorization"],
        14 => &[b"Content-Length"],
        15 => &[b"Accept-Encoding", b"Accept-Language", b"X-Forwarded-For", b"accept-encoding"],
        17 => &[b"If-Modified-Since"],
        25 => &[b"Upgrade-Insecure-Requests"],
        _ => return None,
    };
    candidates.iter().find(|c| **c == name).copied()
}

/// Parses a request head from the start of `buf`; `Ok(None)` means the
/// head is not complete yet. Bytes after the head (a pipelined request, a
/// body) are not looked at.
pub fn parse_head(buf: &[u8], limits: &HeadLimits) -> Result<Option<RequestHead>, HeadError> {
    HeadParser::new(limits).parse(buf)
}

/// The single header with this name, or a 400 when there are several.
fn single_header<'a>(head: &'a RequestHead, name: &'a str) -> Result<Option<&'a Bytes>, HeadError> {
    let mut all = head.headers_named(name);
    let first = all.next();
    if all.next().is_some() {
        return Err(HeadError::BadRequest("client sent duplicate header line"));
    }
    Ok(first)
}

/// Content-Length as nginx reads it: digits only, at least one, no sign,
/// at most 2^63-1.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d)).filter(|&v| v <= i64::MAX as u64)
    })
}

/// The body framing, with nginx's rules: an invalid or repeated
/// Content-Length is a 400; Transfer-Encoding in HTTP/1.0 is a 400;
/// Transfer-Encoding other than exactly "chunked" (any case) is a 501;
/// chunked together with Content-Length is a 400.
pub fn body_framing(head: &RequestHead) -> Result<BodyFraming, HeadError> {
    let length = match single_header(head, "content-length")? {
        Some(v) => Some(
            parse_content_length(v).ok_or(HeadError::BadRequest("client sent invalid \"Content-Length\" header"))?,
        ),
        None => None,
    };
    if let Some(te) = single_header(head, "transfer-encoding")? {
        if head.version < (1, 1) {
            return Err(HeadError::BadRequest("client sent HTTP/1.0 request with \"Transfer-Encoding\" header"));
        }
        if !te.eq_ignore_ascii_case(b"chunked") {
            return Err(HeadError::NotImplemented);
        }
        if length.is_some() {
            return Err(HeadError::BadRequest(
                "client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time",
            ));
        }
        return Ok(BodyFraming::Chunked);
    }
    Ok(length.map_or(BodyFraming::None, BodyFraming::Length))
}

/// The host naming the server, validated and lowercased: the request
/// line's (absolute-form) when present, else the Host header's. A repeated
/// or invalid Host is a 400, and so is an HTTP/1.1 request without a Host
/// header — even with an absolute-form target, as nginx (and RFC 9112)
/// require.
pub fn host_header(head: &RequestHead) -> Result<Option<Bytes>, HeadError> {
    resolve_host(head, head.host_header.clone())
}

/// As [`host_header`], moving the host the parser checked out of the head
/// instead of sharing it (one reference count less to take and drop per
/// request): for the connection, which keeps the host on the request.
pub fn take_host(head: &mut RequestHead) -> Result<Option<Bytes>, HeadError> {
    let checked = head.host_header.take();
    resolve_host(head, checked)
}

fn resolve_host(head: &RequestHead, checked: Option<Bytes>) -> Result<Option<Bytes>, HeadError> {
    let mut hosts = head.headers_named("host");
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::BadRequest("client sent duplicate host header"));
    }
    // Checked when the line arrived; the parser kept the result.
    let from_header = match (checked, header) {
        (Some(h), _) => Some(h),
        (None, Some(h)) => Some(validate_host_bytes(h)?),
        (None, None) => None,
    };
    if header.is_none() && head.version > (1, 0) {
        return Err(HeadError::BadRequest("client sent HTTP/1.1 request without \"Host\" header"));
    }
    match &head.host_in_uri {
        Some(h) => validate_host_bytes(h)
            .map(Some)
            .map_err(|_| HeadError::BadRequest("client sent invalid host in request line")),
        None => Ok(from_header),
    }
}

/// Methods nginx refuses once the head is in: TRACE, and CONNECT (nginx
/// only allows it where it proxies CONNECT, which sluice does not).
pub fn method_allowed(head: &RequestHead) -> Result<(), HeadError> {
    match head.method {
        Method::Trace => Err(HeadError::NotAllowed("client sent TRACE method")),
        Method::Connect => Err(HeadError::NotAllowed("client sent CONNECT method")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
