//! Scanners for one request line and one header line, with nginx's
//! acceptance rules. They are stateless: each call scans its line from the
//! start, over all the bytes received so far, and says where it ended, or
//! at which byte it failed, or that the line is not complete yet. The caller
//! (`HeadParser`) uses those positions to apply nginx's buffer limits.

use std::ops::Range;

use super::{HeadError, Method};

const CR: u8 = b'\r';
const LF: u8 = b'\n';

pub(crate) const INVALID_METHOD: HeadError = HeadError::BadRequest("client sent invalid method");
pub(crate) const INVALID_REQUEST: HeadError = HeadError::BadRequest("client sent invalid request");
pub(crate) const INVALID_HEADER: HeadError = HeadError::BadRequest("client sent invalid header line");

/// Why a scan stopped before the end of its line.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Every byte so far is acceptable; the line needs more.
    Incomplete,
    /// The byte at this offset is not acceptable.
    Error(usize, HeadError),
}

type Scan<T> = Result<T, Stop>;

/// A cursor over the received bytes; reading past them is `Incomplete`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Scan<u8> {
        let b = *self.buf.get(self.pos).ok_or(Stop::Incomplete)?;
        self.pos += 1;
        Ok(b)
    }

    /// Fails at the byte just read.
    fn fail<T>(&self, e: HeadError) -> Scan<T> {
        Err(Stop::Error(self.pos - 1, e))
    }

    fn expect(&mut self, want: u8, e: HeadError) -> Scan<()> {
        if self.next()? == want {
            Ok(())
        } else {
            self.fail(e)
        }
    }
}

/// The pieces of a request line, as offsets into the received bytes.
#[derive(Debug, Clone)]
pub(crate) struct RequestLine {
    pub(crate) method: Method,
    pub(crate) method_end: usize,
    pub(crate) target: Target,
    pub(crate) version: (u8, u8),
    /// End of the line's text (its CR, or its LF when there is no CR).
    pub(crate) text_end: usize,
    /// Just after the LF.
    pub(crate) next: usize,
}

/// The request target's pieces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    /// The path and arguments as sent; `None` when the target had no path
    /// (absolute-form "http://host", CONNECT): the URI is then "/".
    pub(crate) path: Option<Range<usize>>,
    /// Absolute-form with "?args" straight after the authority.
    pub(crate) empty_path: bool,
    pub(crate) schema: Option<Range<usize>>,
    /// Host and optional port, as sent.
    pub(crate) host: Option<Range<usize>>,
}

/// How the target ended.
enum TargetEnd {
    /// A space: a version may follow.
    Space,
    /// End of line straight after the target: HTTP/0.9.
    Line { text_end: usize, next: usize },
}

fn method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'_' || b == b'-'
}

/// Scans a request line starting at `start` (the first byte after any
/// leading empty lines).
pub(crate) fn scan_request_line(buf: &[u8], start: usize) -> Scan<RequestLine> {
    let mut c = Cursor { buf, pos: start };
    loop {
        let b = c.next()?;
        if b == b' ' && c.pos - 1 > start {
            break;
        }
        if !method_byte(b) {
            return c.fail(INVALID_METHOD);
        }
    }
    let method_end = c.pos - 1;
    let method = Method::from_name(&buf[start..method_end]);
    let mut target = Target::default();
    let end = if method == Method::Connect {
        scan_connect_target(&mut c, &mut target)?
    } else {
        scan_target(&mut c, &mut target)?
    };
    let (version, text_end, next) = match end {
        TargetEnd::Line { text_end, next } => ((0, 9), text_end, next),
        TargetEnd::Space => scan_version(&mut c)?,
    };
    Ok(RequestLine { method, method_end, target, version, text_end, next })
}

fn scan_target(c: &mut Cursor, t: &mut Target) -> Scan<TargetEnd> {
    let first = loop {
        match c.next()? {
            b' ' => continue,
            b => break b,
        }
    };
    if first == b'/' {
        return scan_path(c, t, c.pos - 1);
    }
    if !first.is_ascii_alphabetic() {
        return c.fail(INVALID_REQUEST);
    }
    let schema_start = c.pos - 1;
    loop {
        let b = c.next()?;
        if b == b':' {
            break;
        }
        if !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
            return c.fail(INVALID_REQUEST);
        }
    }
    t.schema = Some(schema_start..c.pos - 1);
    c.expect(b'/', INVALID_REQUEST)?;
    c.expect(b'/', INVALID_REQUEST)?;
    let host_start = c.pos;
    let after = scan_authority(c, false)?;
    t.host = Some(host_start..c.pos - 1);
    match after {
        b'/' => scan_path(c, t, c.pos - 1),
        b'?' => {
            t.empty_path = true;
            scan_path(c, t, c.pos - 1)
        }
        b' ' => Ok(TargetEnd::Space),
        _ => c.fail(INVALID_REQUEST),
    }
}

/// CONNECT's target is "host:port" with a mandatory port.
fn scan_connect_target(c: &mut Cursor, t: &mut Target) -> Scan<TargetEnd> {
    while c.buf.get(c.pos) == Some(&b' ') {
        c.pos += 1;
    }
    let host_start = c.pos;
    match scan_authority(c, true)? {
        b' ' => {
            t.host = Some(host_start..c.pos - 1);
            Ok(TargetEnd::Space)
        }
        _ => c.fail(INVALID_REQUEST),
    }
}

/// Scans "host[:port]" (host a name of letters, digits, '.', '-', or a
/// bracketed IP literal) and returns the byte that ended it.
fn scan_authority(c: &mut Cursor, connect: bool) -> Scan<u8> {
    let mut b = c.next()?;
    if b == b'[' {
        loop {
            b = c.next()?;
            if b == b']' {
                break;
            }
            let literal_ok = b.is_ascii_alphanumeric() || b":-._~!$&'()*+,;=".contains(&b);
            if !literal_ok {
                return c.fail(INVALID_REQUEST);
            }
        }
        b = c.next()?;
    } else {
        while b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            b = c.next()?;
        }
    }
    if b != b':' {
        return if connect { c.fail(INVALID_REQUEST) } else { Ok(b) };
    }
    let mut digits = 0;
    loop {
        b = c.next()?;
        if !b.is_ascii_digit() {
            break;
        }
        digits += 1;
    }
    if connect && digits == 0 {
        return c.fail(INVALID_REQUEST);
    }
    Ok(b)
}

/// Scans the path and arguments from `start` (a '/' or '?' already read)
/// up to a space or the end of the line. Controls are refused; bytes of
/// 0x80 and above are accepted as nginx does.
fn scan_path(c: &mut Cursor, t: &mut Target, start: usize) -> Scan<TargetEnd> {
    loop {
        let b = c.next()?;
        match b {
            b' ' => {
                t.path = Some(start..c.pos - 1);
                return Ok(TargetEnd::Space);
            }
            CR | LF => {
                t.path = Some(start..c.pos - 1);
                let text_end = c.pos - 1;
                if b == CR {
                    c.expect(LF, INVALID_REQUEST)?;
                }
                let next = c.pos;
                return Ok(TargetEnd::Line { text_end, next });
            }
            0..=0x1f | 0x7f => return c.fail(INVALID_REQUEST),
            _ => {}
        }
    }
}

/// After the target and its space: spaces, then "HTTP/major.minor" (or
/// the end of the line for HTTP/0.9), optional spaces, CRLF or LF.
fn scan_version(c: &mut Cursor) -> Scan<((u8, u8), usize, usize)> {
    let b = loop {
        match c.next()? {
            b' ' => continue,
            b => break b,
        }
    };
    if b == CR || b == LF {
        return finish_line(c, b, (0, 9));
    }
    if b != b'H' {
        return c.fail(INVALID_REQUEST);
    }
    for want in *b"TTP/" {
        c.expect(want, INVALID_REQUEST)?;
    }
    let major = c.next()?;
    if !(b'1'..=b'9').contains(&major) {
        return c.fail(INVALID_REQUEST);
    }
    // Only major 1 exists here: any digit that makes it larger is a 505
    // at once, as nginx does (HTTP/2 on this port, HTTP/10.0, ...).
    if major > b'1' {
        return c.fail(HeadError::VersionNotSupported);
    }
    match c.next()? {
        b'.' => {}
        b'0'..=b'9' => return c.fail(HeadError::VersionNotSupported),
        _ => return c.fail(INVALID_REQUEST),
    }
    let mut minor: u16 = match c.next()? {
        d @ b'0'..=b'9' => u16::from(d - b'0'),
        _ => return c.fail(INVALID_REQUEST),
    };
    loop {
        match c.next()? {
            d @ b'0'..=b'9' if minor <= 99 => minor = minor * 10 + u16::from(d - b'0'),
            b' ' => break,
            b @ (CR | LF) => return finish_line(c, b, (1, saturate(minor))),
            _ => return c.fail(INVALID_REQUEST),
        }
    }
    loop {
        match c.next()? {
            b' ' => continue,
            b @ (CR | LF) => return finish_line(c, b, (1, saturate(minor))),
            _ => return c.fail(INVALID_REQUEST),
        }
    }
}

/// nginx reads minors up to 999; all above 1 behave as 1.1 here.
fn saturate(minor: u16) -> u8 {
    u8::try_from(minor).unwrap_or(u8::MAX)
}

fn finish_line(c: &mut Cursor, b: u8, version: (u8, u8)) -> Scan<((u8, u8), usize, usize)> {
    let text_end = c.pos - 1;
    if b == CR {
        c.expect(LF, INVALID_REQUEST)?;
    }
    Ok((version, text_end, c.pos))
}

/// One header line, or the empty line that ends the head.
#[derive(Debug, Clone)]
pub(crate) enum HeaderLine {
    Field(Field),
    End { next: usize },
}

/// A header field line's pieces.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: Range<usize>,
    pub(crate) value: Range<usize>,
    /// The name has bytes nginx calls invalid (not letters, digits, '-',
    /// or '_' when underscores are not allowed).
    pub(crate) invalid: bool,
    pub(crate) next: usize,
}

/// The bytes a header name is made of without remark: letters, digits and
/// '-' (a table: this is asked for every byte of every name).
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'-';
        i += 1;
    }
    t
};

/// Scans one header line starting at `start`.
pub(crate) fn scan_header_line(buf: &[u8], start: usize, underscores: bool) -> Scan<HeaderLine> {
    let mut c = Cursor { buf, pos: start };
    match c.next()? {
        CR => {
            c.expect(LF, INVALID_HEADER)?;
            return Ok(HeaderLine::End { next: c.pos });
        }
        LF => return Ok(HeaderLine::End { next: c.pos }),
        // A leading space is an obsolete line folding; ':' an empty name.
        b if b <= 0x20 || b == 0x7f || b == b':' => return c.fail(INVALID_HEADER),
        _ => c.pos -= 1,
    }
    let mut invalid = false;
    let name_end = loop {
        while buf.get(c.pos).is_some_and(|&b| NAME_BYTE[usize::from(b)]) {
            c.pos += 1;
        }
        match c.next()? {
            b'_' => invalid |= !underscores,
            b':' | CR | LF => break c.pos - 1,
            0..=0x20 | 0x7f => return c.fail(INVALID_HEADER),
            _ => invalid = true,
        }
    };
    // A line without ':' is a field with an empty value, as nginx has it.
    if buf[name_end] != b':' {
        c.pos = name_end;
    }
    let value = scan_value(&mut c)?;
    Ok(HeaderLine::Field(Field { name: start..name_end, value, invalid, next: c.pos }))
}

/// Scans a value up to its line end: leading and trailing spaces (not
/// tabs) are not part of it; NUL and a CR not followed by LF are refused.
fn scan_value(c: &mut Cursor) -> Scan<Range<usize>> {
    while c.buf.get(c.pos) == Some(&b' ') {
        c.pos += 1;
    }
    let start = c.pos;
    let rest = &c.buf[start..];
    // Most values are short: a plain loop finds their end sooner than
    // memchr's set-up does; a long one goes on with memchr.
    let quick = rest.len().min(32);
    let off = match rest[..quick].iter().position(|&b| b == CR || b == LF || b == 0) {
        Some(off) => off,
        None => match memchr::memchr3(CR, LF, 0, &rest[quick..]) {
            Some(off) => quick + off,
            None => return Err(Stop::Incomplete),
        },
    };
    c.pos = start + off + 1;
    let mut end = start + off;
    match rest[off] {
        0 => return c.fail(INVALID_HEADER),
        CR => loop {
            // nginx lets more CRs come before the LF.
            match c.next()? {
                CR => continue,
                LF => break,
                _ => return c.fail(INVALID_HEADER),
            }
        },
        _ => {}
    }
    while end > start && c.buf[end - 1] == b' ' {
        end -= 1;
    }
    Ok(start..end)
}
