//! A strict, std-only HTTP/1.x response parser for end-to-end tests.
//!
//! It is written independently of sluice's own code on purpose: a test that
//! decodes the server's output with the server's parser would accept the
//! server's mistakes. It is strict where nginx is exact (CRLF line ends,
//! well-formed chunk framing), so framing bugs fail loudly.
//!
//! `try_parse_response` is the incremental form (`Ok(None)` = need more
//! bytes); `parse_response` and `parse_all` take a buffer read to EOF.

/// One parsed response: status line, header fields in order, decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`, as sent.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Trailer fields after the last chunk, in order.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_field(&self.headers, name)
    }

    /// Every header field named `name`, in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The first trailer field named `name` (ASCII case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find_field(&self.trailers, name)
    }

    /// The body as text (invalid UTF-8 replaced), for assertions.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Upper bound on a chunk size line, so a runaway size cannot make the
/// parser wait forever for a line end.
const MAX_CHUNK_LINE: usize = 1024;

/// Parses one response from the front of `buf`.
///
/// `head` says the request was HEAD (no body whatever the headers say);
/// `eof` says `buf` holds everything the server will send, so a body
/// without length runs to the end. Returns `Ok(None)` when more bytes are
/// needed, `Ok(Some((response, consumed)))` when one response is complete,
/// and `Err` (a description) when the bytes are not a valid response.
pub fn try_parse_response(buf: &[u8], head: bool, eof: bool) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if eof && !buf.is_empty() {
            Err(format!("truncated response head: {:?}", show(buf)))
        } else {
            Ok(None)
        };
    };
    let mut resp = parse_head(&buf[..head_end])?;
    let body_start = head_end + 4;
    let rest = &buf[body_start..];

    if head || resp.status < 200 || resp.status == 204 || resp.status == 304 {
        return Ok(Some((resp, body_start)));
    }
    if is_chunked(&resp)? {
        resp.chunked = true;
        return match decode_chunked(rest)? {
            Some((body, trailers, used)) => {
                resp.body = body;
                resp.trailers = trailers;
                Ok(Some((resp, body_start + used)))
            }
            None if eof => Err(format!("chunked body cut short: {:?}", show(rest))),
            None => Ok(None),
        };
    }
    match content_length(&resp)? {
        Some(len) if rest.len() >= len => {
            resp.body = rest[..len].to_vec();
            Ok(Some((resp, body_start + len)))
        }
        Some(len) if eof => Err(format!("body cut short: Content-Length {len}, got {}", rest.len())),
        Some(_) => Ok(None),
        // No length: the body runs to the connection's end.
        None if eof => {
            resp.body = rest.to_vec();
            Ok(Some((resp, buf.len())))
        }
        None => Ok(None),
    }
}

/// Parses the first response of `buf`, a buffer read to EOF, and returns it
/// with the bytes that follow it. Panics (with the bytes) when `buf` does not
/// start with a complete, valid response.
pub fn parse_response(buf: &[u8]) -> (Response, &[u8]) {
    parse_one(buf, false)
}

/// As [`parse_response`], for the answer to a HEAD request (no body).
pub fn parse_head_response(buf: &[u8]) -> (Response, &[u8]) {
    parse_one(buf, true)
}

fn parse_one(buf: &[u8], head: bool) -> (Response, &[u8]) {
    match try_parse_response(buf, head, true) {
        Ok(Some((resp, used))) => (resp, &buf[used..]),
        Ok(None) => panic!("no response in {:?}", show(buf)),
        Err(e) => panic!("bad response: {e}\nbytes: {:?}", show(buf)),
    }
}

/// Splits a buffer read to EOF into all its responses (pipelining), none of
/// them answers to HEAD. Panics if any is malformed or trailing bytes remain.
pub fn parse_all(mut buf: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (resp, rest) = parse_response(buf);
        out.push(resp);
        buf = rest;
    }
    out
}

fn parse_head(head: &[u8]) -> Result<Response, String> {
    let text = std::str::from_utf8(head).map_err(|_| format!("response head is not UTF-8: {:?}", show(head)))?;
    if text.contains('\n') && text.split("\r\n").any(|l| l.contains('\n')) {
        return Err(format!("bare LF in response head: {text:?}"));
    }
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut resp = parse_status_line(status_line)?;
    for line in lines {
        resp.headers.push(parse_field(line)?);
    }
    Ok(resp)
}

fn parse_status_line(line: &str) -> Result<Response, String> {
    let bad = || format!("bad status line: {line:?}");
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(Response {
        version: version.to_string(),
        status: code.parse().map_err(|_| bad())?,
        reason: reason.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        chunked: false,
        trailers: Vec::new(),
    })
}

fn parse_field(line: &str) -> Result<(String, String), String> {
    let bad = || format!("bad header line: {line:?}");
    if line.starts_with([' ', '\t']) {
        return Err(format!("obsolete line folding: {line:?}"));
    }
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad());
    }
    Ok((name.to_string(), value.trim_matches([' ', '\t']).to_string()))
}

fn is_chunked(resp: &Response) -> Result<bool, String> {
    let codings: Vec<String> = resp
        .headers_all("Transfer-Encoding")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    match codings.last() {
        None => Ok(false),
        Some(last) if last == "chunked" => Ok(true),
        Some(_) => Err(format!("unknown Transfer-Encoding: {codings:?}")),
    }
}

fn content_length(resp: &Response) -> Result<Option<usize>, String> {
    let values = resp.headers_all("Content-Length");
    let Some(first) = values.first() else {
        return Ok(None);
    };
    if values.iter().any(|v| v != first) {
        return Err(format!("conflicting Content-Length: {values:?}"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad Content-Length: {first:?}"));
    }
    first.parse().map(Some).map_err(|_| format!("Content-Length too large: {first:?}"))
}

/// Header or trailer fields, in order.
type Fields = Vec<(String, String)>;

/// A decoded chunked body: payload, trailer fields, bytes consumed.
type Chunked = (Vec<u8>, Fields, usize);

/// Decodes a chunked body at the front of `buf`; `Ok(None)` = incomplete.
fn decode_chunked(buf: &[u8]) -> Result<Option<Chunked>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_len) = find(&buf[pos..], b"\r\n") else {
            if buf.len() - pos > MAX_CHUNK_LINE {
                return Err("chunk size line too long".to_string());
            }
            return Ok(None);
        };
        let size = chunk_size(&buf[pos..pos + line_len])?;
        pos += line_len + 2;
        if size == 0 {
            return Ok(decode_trailers(&buf[pos..])?.map(|(trailers, used)| (body, trailers, pos + used)));
        }
        let end = pos.checked_add(size).ok_or("chunk size overflows")?;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(format!("chunk of {size} bytes not followed by CRLF: {:?}", show(&buf[end..])));
        }
        body.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, String> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let bad = || format!("bad chunk size line: {:?}", show(line));
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(digits).map_err(|_| bad())?;
    usize::from_str_radix(text, 16).map_err(|_| bad())
}

/// Trailer section after the last chunk: fields, then an empty line.
fn decode_trailers(buf: &[u8]) -> Result<Option<(Fields, usize)>, String> {
    if buf.starts_with(b"\r\n") {
        return Ok(Some((Vec::new(), 2)));
    }
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| format!("trailers are not UTF-8: {:?}", show(&buf[..end])))?;
    let fields = text.split("\r\n").map(parse_field).collect::<Result<_, _>>()?;
    Ok(Some((fields, end + 4)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Bytes as text for failure messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\r\n\r\nhello";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Var: localhost\r\nX-Two: 2\r\n\r\n";

    #[test]
    fn content_length_body_and_headers() {
        let (r, rest) = parse_response(CL);
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(r.header("X-A"), Some("a"));
        assert_eq!(r.header("x-missing"), None);
        assert!(!r.chunked);
        assert!(rest.is_empty());
    }

    #[test]
    fn chunked_body_with_extension_and_trailers() {
        let (r, rest) = parse_response(CHUNKED);
        assert!(r.chunked);
        assert_eq!(r.body_str(), "hello!");
        assert_eq!(r.trailer("x-var"), Some("localhost"));
        assert_eq!(r.trailers.len(), 2);
        assert_eq!(r.header("X-Var"), None);
        assert!(rest.is_empty());
    }

    #[test]
    fn chunked_without_trailers_and_empty_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let (r, rest) = parse_response(raw);
        assert!(r.body.is_empty() && r.trailers.is_empty());
        assert!(rest.is_empty());
    }

    #[test]
    fn pipelined_responses_split_in_order() {
        let mut raw = CL.to_vec();
        raw.extend_from_slice(CHUNKED);
        raw.extend_from_slice(b"HTTP/1.1 204 No Content\r\nX-B: b\r\n\r\n");
        raw.extend_from_slice(b"HTTP/1.0 404 Not Found\r\n\r\ngone");
        let all = parse_all(&raw);
        let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 204, 404]);
        assert_eq!(all[1].body, b"hello!");
        assert!(all[2].body.is_empty());
        assert_eq!(all[3].body, b"gone", "close-delimited body runs to EOF");
    }

    #[test]
    fn every_split_point_needs_more_until_complete() {
        for raw in [CL, CHUNKED] {
            for cut in 0..raw.len() {
                let got = try_parse_response(&raw[..cut], false, false);
                assert_eq!(got, Ok(None), "cut at {cut} of {:?}", show(raw));
            }
            let (r, used) = try_parse_response(raw, false, false).unwrap().unwrap();
            assert_eq!(used, raw.len());
            assert_eq!(r, parse_response(raw).0);
        }
    }

    #[test]
    fn head_and_bodiless_statuses_take_no_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\
            Content-Length: 9\r\n\r\n";
        let (r, rest) = parse_head_response(raw);
        assert!(r.body.is_empty());
        let (r, rest) = parse_response(rest);
        assert_eq!((r.status, r.body.len()), (304, 0));
        assert!(rest.is_empty());
        let (r, _) = parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(r.status, 100);
    }

    #[test]
    fn body_without_length_waits_for_eof() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\npartial";
        assert_eq!(try_parse_response(raw, false, false), Ok(None));
        let (r, used) = try_parse_response(raw, false, true).unwrap().unwrap();
        assert_eq!((r.body.as_slice(), used), (&b"partial"[..], raw.len()));
    }

    #[test]
    fn malformed_framing_is_an_error() {
        let bad: [&[u8]; 8] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nSEE-THIS\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        ];
        for raw in bad {
            assert!(try_parse_response(raw, false, true).is_err(), "accepted {:?}", show(raw));
        }
    }

    #[test]
    fn truncated_input_at_eof_is_an_error() {
        for raw in [&CL[..CL.len() - 1], &CHUNKED[..CHUNKED.len() - 2], &CL[..10]] {
            assert!(try_parse_response(raw, false, true).is_err());
        }
        assert_eq!(try_parse_response(b"", false, true), Ok(None));
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_keeps_order() {
        let raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie:b=2 \r\n\
            Content-Length: 0\r\n\r\n";
        let (r, _) = parse_response(raw);
        assert_eq!(r.header("SET-COOKIE"), Some("a=1"));
        assert_eq!(r.headers_all("Set-Cookie"), ["a=1", "b=2"]);
        assert_eq!(r.headers[1].0, "set-cookie", "names kept as sent");
    }
}
