//! The request body reader: Content-Length and chunked bodies, kept in
//! memory up to `client_body_buffer_size` and in a temp file beyond it (the
//! file is removed when the request ends), `Expect: 100-continue`,
//! `client_max_body_size` (413), and discarding an unread body so that
//! keep-alive goes on.
//!
//! A handler that needs the body calls [`Request::read_body`] with the
//! function to continue with; when the body is not all there yet the reader
//! answers `Flow::Again` and the connection resumes reading on the next
//! readable event, then calls the continuation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_core::log::Level;
use sluice_core::{Buf, Chain};

use crate::chunked_decode::{ChunkedDecoder, Decoded};
use crate::core_module::BodyInFile;
use crate::module::Flow;
use crate::parse::BodyFraming;
use crate::request::{Conn, Request};

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 16 * 1024;

/// Where the body reader stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyState {
    /// Nobody asked for the body yet.
    #[default]
    Unread,
    /// Reading (or discarding).
    Reading,
    /// All of it was read (or discarded).
    Done,
}

/// A temp file holding a body; removed on drop unless kept.
#[derive(Debug)]
pub struct TempFile {
    /// Where it is.
    pub path: PathBuf,
    file: Arc<File>,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The request body and its reader state.
#[derive(Debug, Default)]
pub struct RequestBody {
    pub(crate) framing: Option<BodyFraming>,
    remaining: u64,
    /// Boxed: most requests have no chunked body, and a smaller `Request`
    /// stays within the allocator's fast size classes.
    decoder: Option<Box<ChunkedDecoder>>,
    /// The body: memory bufs, or one file region once it spilled.
    pub bufs: Chain,
    mem_len: u64,
    /// The temp file, when the body is (also) in a file.
    /// Boxed: most bodies stay in memory, and `Request` must stay small.
    pub file: Option<Box<TempFile>>,
    /// Payload bytes received so far.
    pub received: u64,
    /// Reader state.
    pub state: BodyState,
    discard: bool,
    /// Handed to the handler piece by piece (`stream_body`), never to a file.
    /// Boxed: few requests stream, and `Request` must stay small.
    streaming: Option<Box<Handed>>,
    pub(crate) next: Option<fn(&mut Request) -> Flow>,
    pub(crate) continue_sent: bool,
}

/// A streamed body's bufs of `RequestBody::bufs` already handed out, and
/// their bytes. They stay for `$request_body` while the whole body fits in
/// `client_body_buffer_size`, as nginx's do.
#[derive(Debug, Default)]
struct Handed {
    bufs: usize,
    bytes: u64,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl RequestBody {
    /// The length announced by Content-Length, if any.
    pub fn declared_length(&self) -> Option<u64> {
        match self.framing {
            Some(BodyFraming::Length(n)) => Some(n),
            _ => None,
        }
    }

    /// True when the request has a body to read (or discard).
    pub fn expected(&self) -> bool {
        match self.framing {
            Some(BodyFraming::Length(n)) => n > 0,
            Some(BodyFraming::Chunked) => true,
            _ => false,
        }
    }

    pub(crate) fn init(&mut self, framing: BodyFraming) {
        self.remaining = match framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        if framing == BodyFraming::Chunked {
            self.decoder = Some(Box::new(ChunkedDecoder::new()));
        }
        self.framing = Some(framing);
        if !self.expected() {
            self.state = BodyState::Done;
        }
    }

    /// The body in memory as one `Bytes` (`$request_body`); `None` when it
    /// went to a file.
    pub fn in_memory(&self) -> Option<Bytes> {
        if self.file.is_some() {
            return None;
        }
        match self.bufs.buf_count() {
            0 => Some(Bytes::new()),
            1 => self.bufs.bufs()[0].as_bytes().cloned(),
            _ => self.bufs.to_vec().ok().map(Bytes::from),
        }
    }
}

/// Why reading stopped.
pub(crate) enum Pump {
    Done,
    NeedMore,
    Status(u16),
}

struct Limits {
    max: u64,
    buffer: u64,
    in_file: BodyInFile,
    temp_dir: PathBuf,
    single_buffer: bool,
}

fn limits(r: &Request) -> Limits {
    let c = r.core_loc();
    Limits {
        max: c.client_max_body_size.unwrap_or(1 << 20),
        buffer: c.client_body_buffer_size.unwrap_or(16 * 1024),
        in_file: c.client_body_in_file_only.unwrap_or(BodyInFile::Off),
        temp_dir: r.body_temp_dir(),
        single_buffer: c.client_body_in_single_buffer.unwrap_or(false),
    }
}

impl RequestBody {
    fn store(&mut self, data: Bytes, lim: &Limits) -> io::Result<()> {
        self.received += data.len() as u64;
        if self.discard || data.is_empty() {
            return Ok(());
        }
        let to_file = self.streaming.is_none()
            && (lim.in_file != BodyInFile::Off || self.file.is_some() || self.mem_len + data.len() as u64 > lim.buffer);
        if !to_file {
            self.mem_len += data.len() as u64;
            self.bufs.push(Buf::mem(data));
            return Ok(());
        }
        if self.file.is_none() {
            let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
            std::fs::create_dir_all(&lim.temp_dir)?;
            let path = lim.temp_dir.join(format!("{:010}", std::process::id() as u64 * 1_000_000 + seq));
            let mut f = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
            for b in self.bufs.iter() {
                if let Some(m) = b.as_bytes() {
                    f.write_all(m)?;
                }
            }
            self.file = Some(Box::new(TempFile { path, file: Arc::new(f), keep: lim.in_file == BodyInFile::On }));
        }
        let tf = self.file.as_ref().expect("created above");
        (&*tf.file).write_all(&data)?;
        Ok(())
    }

    fn finish(&mut self) {
        self.state = BodyState::Done;
        if let Some(tf) = &self.file {
            let len = self.received;
            self.bufs = Chain::one(Buf::file(tf.file.clone(), 0, len));
        }
    }

    /// Consumes body bytes from `rbuf`.
    fn consume(&mut self, rbuf: &mut BytesMut, lim: &Limits) -> Result<bool, u16> {
        match self.framing {
            Some(BodyFraming::Length(_)) => {
                let n = (self.remaining as usize).min(rbuf.len());
                if n > 0 {
                    let data = rbuf.split_to(n).freeze();
                    self.remaining -= n as u64;
                    self.store(data, lim).map_err(|_| 500u16)?;
                }
                Ok(self.remaining == 0)
            }
            Some(BodyFraming::Chunked) => loop {
                let step = self.decoder.as_mut().expect("chunked framing has a decoder").decode(rbuf);
                match step {
                    Ok(Decoded::Data(b)) => {
                        if lim.max > 0 && self.received + b.len() as u64 > lim.max && !self.discard {
                            return Err(413);
                        }
                        self.store(b, lim).map_err(|_| 500u16)?;
                    }
                    Ok(Decoded::Done) => return Ok(true),
                    Ok(Decoded::NeedMore) => return Ok(false),
                    Err(_) => return Err(400),
                }
            },
            _ => Ok(true),
        }
    }
}

/// Reads from the socket into the connection's buffer. Ok(0) is EOF.
///
/// A drained socket answers WouldBlock without a system call (see
/// `ReadReadiness`), which saves the read that would only say EAGAIN after
/// every keep-alive response; the buffer is taken from the pool only for
/// a read that is made.
pub(crate) fn read_socket(conn: &mut Conn, max: usize) -> io::Result<usize> {
    if !conn.read.is_ready() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    if conn.rbuf.capacity() == 0 {
        conn.rbuf = crate::read_buf::take(max);
    }
    conn.read.recv_into(&conn.stream, &mut conn.rbuf, max)
}

/// Reads as much of the body as is available now.
pub(crate) fn pump(r: &mut Request) -> Pump {
    let lim = limits(r);
    loop {
        let mut rbuf = std::mem::take(&mut r.conn.rbuf);
        let res = r.body.consume(&mut rbuf, &lim);
        r.conn.rbuf = rbuf;
        match res {
            Ok(true) => {
                r.body.finish();
                if lim.single_buffer && r.body.file.is_none() && r.body.bufs.buf_count() > 1 {
                    if let Ok(all) = r.body.bufs.to_vec() {
                        r.body.bufs = Chain::one(Buf::mem(all));
                    }
                }
                return Pump::Done;
            }
            // A streamed body waits in memory for the handler to take it:
            // at `client_body_buffer_size` reading stops until it does.
            Ok(false) if r.body.streaming.as_ref().is_some_and(|h| r.body.received - h.bytes >= lim.buffer) => {
                return Pump::NeedMore
            }
            Ok(false) => {}
            Err(code) => {
                if code == 400 {
                    crate::req_log!(r, Level::Info, "client sent invalid chunked body");
                }
                r.keepalive = false;
                r.body.state = BodyState::Done;
                return Pump::Status(code);
            }
        }
        match read_socket(&mut r.conn, READ_CHUNK) {
            Ok(0) => {
                crate::req_log!(r, Level::Info, "client prematurely closed connection");
                r.keepalive = false;
                r.conn.broken = true;
                r.body.state = BodyState::Done;
                return Pump::Status(400);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pump::NeedMore,
            Err(e) => {
                crate::req_log!(r, Level::Info, "recv() failed ({})", sluice_core::log::os_error(&e));
                r.keepalive = false;
                r.conn.broken = true;
                r.body.state = BodyState::Done;
                return Pump::Status(400);
            }
        }
    }
}

/// Answers `Expect: 100-continue` (HTTP/1.1) once a handler reads or
/// discards the body, as nginx does: also for an empty body, since the
/// client may be waiting for it before it sends even the end of a chunked
/// one. Not when part of the body is already in (the client did not wait),
/// and never once the response head has gone (a body left unread by the
/// handler is discarded after the response).
fn send_continue(r: &mut Request) {
    if r.body.continue_sent || !r.head.expects_continue || r.head.version < (1, 1) || r.header_sent() {
        return;
    }
    r.body.continue_sent = true;
    if r.conn.rbuf.is_empty() {
        r.conn.out.push(Buf::from_static(b"HTTP/1.1 100 Continue\r\n\r\n"));
        let _ = r.conn.send_pending(false, 0);
    }
}

impl Request {
    /// Reads the whole body, then calls `next`. Returns what `next` returns,
    /// or `Flow::Again` while waiting for more bytes (the connection calls
    /// `next` later), or a status on a bad or too large body.
    pub fn read_body(&mut self, next: fn(&mut Request) -> Flow) -> Flow {
        send_continue(self);
        if self.body.state == BodyState::Done {
            return next(self);
        }
        self.body.state = BodyState::Reading;
        match pump(self) {
            Pump::Done => next(self),
            Pump::NeedMore => {
                self.body.next = Some(next);
                Flow::Again
            }
            Pump::Status(s) => Flow::Status(s),
        }
    }

    /// Reads and drops the body (for handlers that do not use it), so the
    /// connection can serve the next request. What is not there yet is
    /// dropped as it arrives, after the response. A malformed body found
    /// now is the handler's answer: `Err(400)`, as nginx's handlers return
    /// the discard's error.
    pub fn discard_body(&mut self) -> Result<(), u16> {
        send_continue(self);
        if self.body.state == BodyState::Done {
            return Ok(());
        }
        self.body.discard = true;
        self.body.state = BodyState::Reading;
        match pump(self) {
            Pump::Status(s) => {
                self.keepalive = false;
                Err(s)
            }
            Pump::Done | Pump::NeedMore => Ok(()),
        }
    }

    /// Starts reading the body to hand it over as it arrives (a proxy with
    /// `proxy_request_buffering off`): the handler takes it with
    /// [`Request::take_body_chunk`] when its task is resumed with
    /// `Resume::BodyRead`. At most `client_body_buffer_size` waits in
    /// memory; nothing goes to a file. `Err` is the status for a bad or
    /// too large body.
    pub fn stream_body(&mut self) -> Result<(), u16> {
        send_continue(self);
        if self.body.state == BodyState::Done {
            return Ok(());
        }
        self.body.streaming = Some(Box::default());
        self.body.state = BodyState::Reading;
        match pump(self) {
            Pump::Status(s) => Err(s),
            Pump::Done | Pump::NeedMore => Ok(()),
        }
    }

    /// What arrived of a streamed body since the last call, and whether
    /// the body is complete.
    pub fn take_body_chunk(&mut self) -> Result<(Chain, bool), u16> {
        if self.body.state == BodyState::Reading {
            if let Pump::Status(s) = pump(self) {
                return Err(s);
            }
        }
        let keep = self.core_loc().client_body_buffer_size.unwrap_or(16 * 1024);
        let b = &mut self.body;
        let handed = b.streaming.get_or_insert_with(Box::default);
        let mut chain = Chain::new();
        for buf in b.bufs.bufs().get(handed.bufs..).unwrap_or(&[]) {
            chain.push(buf.clone());
        }
        handed.bufs = b.bufs.buf_count();
        handed.bytes = b.received;
        if b.received > keep {
            // Too large to keep for `$request_body`: only the upstream has it.
            b.bufs = Chain::new();
            handed.bufs = 0;
        }
        Ok((chain, b.state == BodyState::Done))
    }

    /// The body streams to the request's task (rather than being read
    /// whole or discarded).
    pub(crate) fn body_streams_to_task(&self) -> bool {
        self.body.streaming.is_some() && !self.body.discard && self.task.is_some()
    }

    /// True while the body is still being read or discarded.
    pub(crate) fn body_pending(&self) -> bool {
        self.body.state == BodyState::Reading
    }

    /// Continues reading after a readable event. Returns the flow of the
    /// continuation once the body is complete.
    pub(crate) fn continue_body(&mut self) -> Option<Flow> {
        match pump(self) {
            Pump::NeedMore => None,
            Pump::Done => match self.body.next.take() {
                Some(next) => Some(next(self)),
                None => Some(Flow::Done),
            },
            Pump::Status(s) => {
                self.body.next = None;
                if self.body.discard {
                    Some(Flow::Done)
                } else {
                    Some(Flow::Status(s))
                }
            }
        }
    }

    /// Where request bodies spill: `client_body_temp_path`, a relative one
    /// taken from the prefix.
    pub fn body_temp_dir(&self) -> PathBuf {
        let dir = self.core_loc().client_body_temp_path.as_deref().unwrap_or(std::path::Path::new("client_body_temp"));
        self.http.prefix.join(dir)
    }

    /// The body file's path (`$request_body_file`).
    pub fn body_file(&self) -> Option<&std::path::Path> {
        self.body.file.as_ref().map(|f| f.path.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(buffer: u64, dir: &std::path::Path) -> Limits {
        Limits { max: 1 << 20, buffer, in_file: BodyInFile::Off, temp_dir: dir.to_path_buf(), single_buffer: false }
    }

    #[test]
    fn length_body_in_memory_then_file() {
        let dir = std::env::temp_dir().join(format!("sluice-body-{}", std::process::id()));
        let mut b = RequestBody::default();
        b.init(BodyFraming::Length(10));
        let l = lim(4, &dir);
        let mut rbuf = BytesMut::from(&b"abc"[..]);
        assert_eq!(b.consume(&mut rbuf, &l), Ok(false));
        let mut rbuf = BytesMut::from(&b"defghijNEXT"[..]);
        assert_eq!(b.consume(&mut rbuf, &l), Ok(true));
        assert_eq!(&rbuf[..], b"NEXT");
        b.finish();
        assert!(b.file.is_some());
        assert_eq!(b.bufs.to_vec().unwrap(), b"abcdefghij");
        let path = b.file.as_ref().unwrap().path.clone();
        drop(b);
        assert!(!path.exists(), "the temp file is removed with the body");
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn chunked_body_split_everywhere() {
        let wire = b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\nGET";
        let dir = std::env::temp_dir();
        for split in 0..wire.len() {
            let mut b = RequestBody::default();
            b.init(BodyFraming::Chunked);
            let l = lim(1 << 20, &dir);
            let mut rbuf = BytesMut::from(&wire[..split]);
            let first = b.consume(&mut rbuf, &l).unwrap();
            rbuf.extend_from_slice(&wire[split..]);
            let done = first || b.consume(&mut rbuf, &l).unwrap();
            assert!(done, "split at {split}");
            b.finish();
            assert_eq!(b.bufs.to_vec().unwrap(), b"abcdefg");
            assert_eq!(&rbuf[..], b"GET");
        }
    }
}
