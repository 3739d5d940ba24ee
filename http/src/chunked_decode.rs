//! The chunked request-body decoder (RFC 9112 §7.1), with nginx's rules.
//!
//! [`ChunkedDecoder::decode`] eats framing from the front of the
//! connection's input buffer and hands out chunk payload as `Bytes` split off
//! that buffer, so payload is never copied. It stops after the last chunk's
//! trailer section, leaving whatever follows (a pipelined request) in the
//! buffer.
//!
//! As nginx (since 1.29.4) it insists on CRLF: a bare LF anywhere in the
//! framing is refused, because a lenient reading of the framing is how
//! request smuggling starts. Otherwise it accepts what nginx accepts: upper
//! and lower case hex with leading zeros, `;`, space or tab after the size
//! to start an extension (skipped, any bytes up to CR), and any trailer
//! lines. Unlike nginx, which drops request trailers, trailer fields are
//! kept (lines that are not `name: value` are skipped), within
//! [`MAX_TRAILER_BYTES`]. Any refusal is nginx's 400 "client sent invalid
//! chunked body".

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::parse::Header;

/// The longest size line: hex digits plus extensions, without CRLF. nginx
/// has no such limit; this one keeps an endless extension from holding the
/// connection.
pub const MAX_SIZE_LINE: usize = 4096;

/// The largest chunk size, and the largest body: nginx's `off_t` bound.
pub const MAX_CHUNK_SIZE: u64 = i64::MAX as u64;

/// The most trailer-section bytes kept (the size of one large client header
/// buffer); more is refused.
pub const MAX_TRAILER_BYTES: usize = 8192;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

const BAD_SIZE: ChunkedError = ChunkedError("invalid chunk size");
const SIZE_TOO_LARGE: ChunkedError = ChunkedError("chunk size too large");
const SIZE_LINE_TOO_LONG: ChunkedError = ChunkedError("chunk size line too long");
const BAD_LINE_END: ChunkedError = ChunkedError("expected CRLF");
const NO_CRLF_AFTER_DATA: ChunkedError = ChunkedError("missing CRLF after chunk data");
const TRAILERS_TOO_LARGE: ChunkedError = ChunkedError("trailer section too large");

/// What one call to [`ChunkedDecoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Payload bytes, in order.
    Data(Bytes),
    /// The body is complete: last chunk and trailer section read.
    Done,
    /// The input is used up; call again when more arrives.
    NeedMore,
}

/// A malformed chunked body; the request gets nginx's 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedError(pub &'static str);

impl ChunkedError {
    /// The response status: 400.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client sent invalid chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkedError {}

/// Where the decoder stands in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk size's first hex digit.
    SizeStart,
    /// Among the hex digits.
    Size,
    /// In a chunk extension (after `;`, SP or HTAB), up to CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// In chunk data.
    Data,
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// In a trailer line, up to CR.
    TrailerLine,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    EndLf,
    /// The body is complete.
    Done,
    /// An error was returned; it is returned again.
    Failed(ChunkedError),
}

/// Decodes one chunked body; make a new one per request.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, then the chunk bytes still to come.
    size: u64,
    /// Bytes of the current size line.
    line_len: usize,
    /// Sum of all chunk sizes announced so far.
    declared: u64,
    /// The trailer line being read.
    line: Vec<u8>,
    trailer_bytes: usize,
    trailers: Vec<Header>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            line_len: 0,
            declared: 0,
            line: Vec::new(),
            trailer_bytes: 0,
            trailers: Vec::new(),
        }
    }

    /// Consumes framing from the front of `input` and returns the next
    /// piece of payload (split off `input`), `Done`, or `NeedMore` once
    /// `input` is empty. After `Done`, `input` starts with whatever followed
    /// the body, and further calls return `Done` without touching it.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Decoded, ChunkedError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Failed(e) => return Err(e),
                State::Data => return Ok(self.take_data(input)),
                _ if input.is_empty() => return Ok(Decoded::NeedMore),
                _ => {}
            }
            match self.frame(input) {
                Ok(used) => input.advance(used),
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        }
    }

    /// The trailer fields received (complete once [`Self::is_done`]).
    pub fn trailers(&self) -> &[Header] {
        &self.trailers
    }

    /// Whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The sum of the chunk sizes announced so far, the current chunk's
    /// included even before its data arrives: what nginx compares with
    /// `client_max_body_size` ("client intended to send too large chunked
    /// body").
    pub fn declared_len(&self) -> u64 {
        self.declared
    }

    fn take_data(&mut self, input: &mut BytesMut) -> Decoded {
        if input.is_empty() {
            return Decoded::NeedMore;
        }
        let n = usize::try_from(self.size).map_or(input.len(), |s| s.min(input.len()));
        self.size -= n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
        Decoded::Data(input.split_to(n).freeze())
    }

    /// Steps through framing bytes until data starts, the body ends, or the
    /// input runs out; returns how many bytes were used.
    fn frame(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        for (i, &b) in input.iter().enumerate() {
            self.state = self.step(b)?;
            if matches!(self.state, State::Data | State::Done) {
                return Ok(i + 1);
            }
        }
        Ok(input.len())
    }

    fn step(&mut self, b: u8) -> Result<State, ChunkedError> {
        match self.state {
            State::SizeStart => self.size_start(b),
            State::Size => self.size_digit(b),
            State::Extension => self.extension(b),
            State::SizeLf => self.size_lf(b),
            State::DataCr => expect(b, CR, State::DataLf, NO_CRLF_AFTER_DATA),
            State::DataLf => expect(b, LF, State::SizeStart, NO_CRLF_AFTER_DATA),
            State::TrailerStart => self.trailer_start(b),
            State::TrailerLine => self.trailer_byte(b),
            State::TrailerLf => self.trailer_lf(b),
            State::EndLf => expect(b, LF, State::Done, BAD_LINE_END),
            // `decode` never frames in these states.
            State::Data | State::Done | State::Failed(_) => Ok(self.state),
        }
    }

    fn size_start(&mut self, b: u8) -> Result<State, ChunkedError> {
        let digit = hex(b).ok_or(BAD_SIZE)?;
        self.size = u64::from(digit);
        self.line_len = 1;
        Ok(State::Size)
    }

    fn size_digit(&mut self, b: u8) -> Result<State, ChunkedError> {
        if b == CR {
            return Ok(State::SizeLf);
        }
        self.count_line_byte()?;
        if let Some(d) = hex(b) {
            self.size = self
                .size
                .checked_mul(16)
                .and_then(|s| s.checked_add(u64::from(d)))
                .filter(|&s| s <= MAX_CHUNK_SIZE)
                .ok_or(SIZE_TOO_LARGE)?;
            return Ok(State::Size);
        }
        match b {
            b';' | b' ' | b'\t' => Ok(State::Extension),
            _ => Err(BAD_SIZE),
        }
    }

    fn extension(&mut self, b: u8) -> Result<State, ChunkedError> {
        match b {
            CR => Ok(State::SizeLf),
            LF => Err(BAD_LINE_END),
            _ => {
                self.count_line_byte()?;
                Ok(State::Extension)
            }
        }
    }

    fn count_line_byte(&mut self) -> Result<(), ChunkedError> {
        self.line_len += 1;
        if self.line_len > MAX_SIZE_LINE {
            return Err(SIZE_LINE_TOO_LONG);
        }
        Ok(())
    }

    fn size_lf(&mut self, b: u8) -> Result<State, ChunkedError> {
        if b != LF {
            return Err(BAD_LINE_END);
        }
        if self.size == 0 {
            return Ok(State::TrailerStart);
        }
        self.declared = self.declared.checked_add(self.size).filter(|&d| d <= MAX_CHUNK_SIZE).ok_or(SIZE_TOO_LARGE)?;
        Ok(State::Data)
    }

    fn trailer_start(&mut self, b: u8) -> Result<State, ChunkedError> {
        match b {
            CR => Ok(State::EndLf),
            LF => Err(BAD_LINE_END),
            _ => self.trailer_byte(b),
        }
    }

    fn trailer_byte(&mut self, b: u8) -> Result<State, ChunkedError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(TRAILERS_TOO_LARGE);
        }
        match b {
            CR => Ok(State::TrailerLf),
            LF => Err(BAD_LINE_END),
            _ => {
                self.line.push(b);
                Ok(State::TrailerLine)
            }
        }
    }

    fn trailer_lf(&mut self, b: u8) -> Result<State, ChunkedError> {
        if b != LF {
            return Err(BAD_LINE_END);
        }
        let line = Bytes::from(std::mem::take(&mut self.line));
        if let Some(h) = trailer_field(line) {
            self.trailers.push(h);
        }
        Ok(State::TrailerStart)
    }
}

fn expect(b: u8, want: u8, next: State, err: ChunkedError) -> Result<State, ChunkedError> {
    if b == want {
        Ok(next)
    } else {
        Err(err)
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 9110 token characters, for field names.
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// "name: value" with a token name; the value without surrounding spaces
/// and tabs. Anything else is not kept.
fn trailer_field(line: Bytes) -> Option<Header> {
    let colon = memchr::memchr(b':', &line)?;
    if colon == 0 || !line[..colon].iter().all(|&b| tchar(b)) {
        return None;
    }
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let rest = &line[colon + 1..];
    let start = colon + 1 + rest.iter().position(|b| !is_ows(b)).unwrap_or(rest.len());
    let end = colon + 1 + rest.iter().rposition(|b| !is_ows(b)).map_or(0, |p| p + 1);
    Some(Header { name: line.slice(..colon), value: line.slice(start..end.max(start)) })
}

#[cfg(test)]
mod tests;
