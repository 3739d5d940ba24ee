//! The upstream's response head: status line and header fields, read
//! strictly. Framing that could be read two ways is refused (nginx's 502
//! with its error-log words): a repeated `Content-Length` or
//! `Transfer-Encoding`, both at once, a transfer coding other than
//! `chunked`, a malformed length.

use bytes::{Bytes, BytesMut};

/// Header fields read at most (more is "too big header").
const MAX_HEADERS: usize = 128;

/// A parsed response head.
#[derive(Clone, Debug, Default)]
pub struct UpstreamHead {
    /// The minor version (`HTTP/1.x`).
    pub minor: u8,
    /// The status code.
    pub status: u16,
    /// The header fields, in order, as sent (values trimmed).
    pub headers: Vec<(Bytes, Bytes)>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Connection: close` (or an HTTP/1.0 response without keep-alive):
    /// the connection cannot be reused.
    pub close: bool,
    /// `Connection: upgrade` was sent.
    pub upgrade: bool,
}

impl UpstreamHead {
    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// Why a head was refused; the text is nginx's error-log wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadError(pub String);

/// [`parse`] for a head that arrives in pieces: `scanned` (0 at the start
/// of a head) is how much of `buf` an earlier call found valid but
/// unfinished. Until a blank line arrives after that, the head is not
/// parsed again from its start (an origin that writes its head in several
/// pieces would otherwise have it parsed once per piece); the bytes of the
/// new pieces are checked when it is. A caller giving up on an unfinished
/// head (buffer full, connection closed) calls [`parse`] once more to tell
/// an invalid head from a short one.
pub fn parse_arrived(buf: &mut BytesMut, scanned: &mut usize) -> Result<Option<UpstreamHead>, HeadError> {
    if *scanned > 0 && *scanned <= buf.len() && !has_end(&buf[*scanned - 2.min(*scanned)..]) {
        *scanned = buf.len();
        return Ok(None);
    }
    let parsed = parse(buf)?;
    *scanned = if parsed.is_some() { 0 } else { buf.len() };
    Ok(parsed)
}

/// Whether `bytes` hold the empty line that ends a head (`LF LF` or
/// `LF CR LF`; `bytes` starts two bytes before the new ones, so an end
/// split between two pieces is seen; a trailing `LF CR` counts, to be safe).
fn has_end(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes).any(|i| match bytes.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => bytes.get(i + 2).is_none_or(|&b| b == b'\n'),
        _ => false,
    })
}

/// Parses a head from the front of `buf`. `Ok(None)`: incomplete; on
/// success the head's bytes are removed from `buf`.
pub fn parse(buf: &mut BytesMut) -> Result<Option<UpstreamHead>, HeadError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Not initialised first: the parser writes the entries it returns (an
    // initialised array of 128 entries costs more than a short head's parse).
    let mut raw = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError("upstream sent too many header lines".into())),
        Err(_) => return Err(HeadError("upstream sent invalid header".into())),
    };
    let status = resp.code.unwrap_or(0);
    let minor = resp.version.unwrap_or(0);
    if !(100..=999).contains(&status) {
        return Err(HeadError("upstream sent no valid HTTP/1.0 header".into()));
    }
    // Offsets into the head, so the values can be slices of one `Bytes`.
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    // Values trimmed before they are sliced: one shared slice each (a
    // reference count to take and drop) instead of two.
    let spans: smallvec::SmallVec<[_; 16]> =
        resp.headers.iter().map(|h| (at(h.name.as_bytes()), at(trim(h.value)))).collect();
    let bytes = buf.split_to(len).freeze();
    let slice = |(o, l): (usize, usize)| bytes.slice(o..o + l);
    let mut head = UpstreamHead {
        minor,
        status,
        headers: spans.into_iter().map(|(n, v)| (slice(n), slice(v))).collect(),
        ..UpstreamHead::default()
    };
    framing(&mut head)?;
    Ok(Some(head))
}

/// A value without leading and trailing spaces and tabs (an empty value
/// keeps its position).
fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(v.len());
    let e = v.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(s, |i| i + 1);
    &v[s..e.max(s)]
}

fn duplicate(name: &[u8], value: &[u8], previous: &[u8]) -> HeadError {
    let (n, v, p) = (String::from_utf8_lossy(name), String::from_utf8_lossy(value), String::from_utf8_lossy(previous));
    HeadError(format!("upstream sent duplicate header line: \"{n}: {v}\", previous value: \"{n}: {p}\""))
}

/// Reads the fields that decide how the body is delimited and whether the
/// connection may be reused.
fn framing(head: &mut UpstreamHead) -> Result<(), HeadError> {
    let mut length: Option<&Bytes> = None;
    let mut coding: Option<&Bytes> = None;
    let mut keep_alive = head.minor >= 1;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            if let Some(prev) = length {
                return Err(duplicate(name, value, prev));
            }
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 18 {
                let v = String::from_utf8_lossy(value);
                return Err(HeadError(format!(
                    "upstream sent invalid \"Content-Length\" header: \"Content-Length: {v}\""
                )));
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if let Some(prev) = coding {
                return Err(duplicate(name, value, prev));
            }
            if !value.eq_ignore_ascii_case(b"chunked") {
                let v = String::from_utf8_lossy(value);
                return Err(HeadError(format!("upstream sent unknown \"Transfer-Encoding\": \"{v}\"")));
            }
            coding = Some(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&c| c == b',').map(|t| t.trim_ascii()) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    head.upgrade = true;
                }
            }
        }
    }
    if length.is_some() && coding.is_some() {
        return Err(HeadError(
            "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time".into(),
        ));
    }
    if coding.is_some() && head.minor == 0 {
        return Err(HeadError("upstream sent \"Transfer-Encoding\" in HTTP/1.0 response".into()));
    }
    head.chunked = coding.is_some();
    head.content_length = length.map(|v| v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')));
    head.close = !keep_alive;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<UpstreamHead>, HeadError> {
        parse(&mut BytesMut::from(s))
    }

    #[test]
    fn a_head_at_every_split() {
        let wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello";
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let got = parse(&mut buf).unwrap();
            if split < wire.len() - 5 {
                assert!(got.is_none(), "split {split}");
                continue;
            }
            let h = got.unwrap();
            assert_eq!((h.status, h.content_length, h.chunked, h.close), (200, Some(5), false, false));
            assert_eq!(h.get("x-a").map(|v| &v[..]), Some(&b"b"[..]));
            assert_eq!(&buf[..], &b"hello"[..split + 5 - wire.len()]);
        }
    }

    /// Feeds `wire` to `parse_arrived` in pieces ending at each of `cuts`.
    fn arrived(wire: &[u8], cuts: &[usize]) -> Result<Option<UpstreamHead>, HeadError> {
        let (mut buf, mut scanned, mut from) = (BytesMut::new(), 0, 0);
        for &cut in cuts.iter().chain([&wire.len()]) {
            buf.extend_from_slice(&wire[from..cut]);
            from = cut;
            if let Some(h) = parse_arrived(&mut buf, &mut scanned)? {
                assert_eq!(&buf[..], &wire[cut - buf.len()..cut], "the rest stays");
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    #[test]
    fn a_head_arriving_in_pieces_reads_as_a_whole_one() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\nContent-Length: 5\nX-A: b\n\nhello",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let whole = parse(&mut BytesMut::from(wire)).unwrap().unwrap();
            for a in 1..wire.len() {
                for b in a..wire.len() {
                    let h = arrived(wire, &[a, b]).unwrap().unwrap_or_else(|| panic!("{a} {b}"));
                    assert_eq!((h.status, &h.headers), (whole.status, &whole.headers), "pieces end at {a}, {b}");
                }
            }
        }
    }

    #[test]
    fn an_invalid_line_in_a_later_piece_is_refused_once_the_head_ends() {
        let wire = b"HTTP/1.1 200 OK\r\nX-A: b\r\nBad Line\r\n\r\n";
        for a in 1..wire.len() {
            assert!(arrived(wire, &[a]).is_err(), "split at {a}");
        }
        // Unfinished, it waits; the caller's whole parse sees the error.
        let mut buf = BytesMut::from(&wire[..30]);
        assert!(parse(&mut buf).is_err());
    }

    #[test]
    fn framing_that_reads_two_ways_is_refused() {
        let e = p("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").unwrap_err();
        assert_eq!(
            e.0,
            "upstream sent duplicate header line: \"Content-Length: 6\", previous value: \"Content-Length: 5\""
        );
        let e = p("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err();
        assert!(e.0.contains("at the same time"));
        let e = p("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap_err();
        assert_eq!(e.0, "upstream sent unknown \"Transfer-Encoding\": \"gzip, chunked\"");
        assert!(p("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(p("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n").is_err());
        assert!(p("HTTX/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn connection_reuse() {
        assert!(p("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap().close);
        assert!(!p("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").unwrap().unwrap().close);
        assert!(p("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").unwrap().unwrap().close);
        let h = p("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.upgrade && !h.close);
        assert!(p("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap().unwrap().chunked);
    }
}
