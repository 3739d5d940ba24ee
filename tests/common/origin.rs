//! A scriptable std-only origin server for proxy tests.
//!
//! ```ignore
//! let o = Origin::respond(|_req| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
//! // ... proxy_pass http://127.0.0.1:{o.port()} ...
//! assert_eq!(o.requests()[0].head.target, "/x");
//! ```
//!
//! The origin listens on `127.0.0.1:0` (or a unix socket), counts accepted
//! connections, and runs a handler per connection on its own thread. The
//! handler reads requests with [`OriginConn::read_request`] (recorded, head
//! and decoded body) or [`OriginConn::read_head`] plus a streamed body, and
//! writes exact bytes, so tests can send any framing, stall or close midway.
//!
//! Dropping the `Origin` stops the accept loop and joins every thread;
//! origin sockets have 10 s timeouts so a stuck test fails instead of hanging.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Timeout of every origin socket read or write.
pub const ORIGIN_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A request head as the origin received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The whole head text, request line to the empty line (excluded).
    pub raw: String,
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every field named `name`, in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// How the body is framed.
    pub fn framing(&self) -> Framing {
        if self.header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            Framing::Chunked
        } else if let Some(cl) = self.header("Content-Length") {
            Framing::Length(cl.trim().parse().expect("origin: bad Content-Length"))
        } else {
            Framing::Length(0)
        }
    }
}

/// A request body's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// One request as recorded by the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub head: Head,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Which accepted connection it came on (0-based).
    pub conn: usize,
}

#[derive(Debug)]
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    accepted: AtomicUsize,
    /// Connections whose handler has returned.
    finished: AtomicUsize,
    stop: AtomicBool,
}

/// One accepted connection, handed to the handler.
#[derive(Debug)]
pub struct OriginConn {
    sock: Sock,
    buf: Vec<u8>,
    /// 0-based index of this connection.
    pub index: usize,
    shared: Arc<Shared>,
}

impl OriginConn {
    /// Reads until one byte more is buffered; false on EOF or error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Reads a request head; `None` on EOF (or error) before a full head.
    pub fn read_head(&mut self) -> Option<Head> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let raw = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return Some(parse_head(raw));
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Streams the body of `head` into `sink`; returns false if the
    /// connection ended first.
    pub fn read_body(&mut self, head: &Head, mut sink: impl FnMut(&[u8])) -> bool {
        match head.framing() {
            Framing::Length(mut left) => {
                while left > 0 {
                    if self.buf.is_empty() && !self.fill() {
                        return false;
                    }
                    let n = (left as usize).min(self.buf.len());
                    sink(&self.buf[..n]);
                    self.buf.drain(..n);
                    left -= n as u64;
                }
                true
            }
            Framing::Chunked => loop {
                let Some(line) = self.read_line() else { return false };
                let size_txt = line.split(';').next().unwrap_or("").trim();
                let mut left = u64::from_str_radix(size_txt, 16).expect("origin: bad chunk size");
                if left == 0 {
                    // Trailer section up to the empty line.
                    loop {
                        match self.read_line() {
                            Some(l) if l.is_empty() => return true,
                            Some(_) => {}
                            None => return false,
                        }
                    }
                }
                while left > 0 {
                    if self.buf.is_empty() && !self.fill() {
                        return false;
                    }
                    let n = (left as usize).min(self.buf.len());
                    sink(&self.buf[..n]);
                    self.buf.drain(..n);
                    left -= n as u64;
                }
                match self.read_line() {
                    Some(l) if l.is_empty() => {}
                    _ => return false,
                }
            },
        }
    }

    fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads one request with its body and records it; `None` on EOF.
    pub fn read_request(&mut self) -> Option<Recorded> {
        let head = self.read_head()?;
        let mut body = Vec::new();
        let complete = self.read_body(&head, |b| body.extend_from_slice(b));
        let rec = Recorded { head, body, conn: self.index };
        self.shared.requests.lock().unwrap().push(rec.clone());
        complete.then_some(rec)
    }

    /// Records a request read by hand (e.g. with a streamed body).
    pub fn record(&self, head: Head, body: Vec<u8>) {
        self.shared.requests.lock().unwrap().push(Recorded { head, body, conn: self.index });
    }

    /// Writes all of `bytes`; false if the peer has gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.sock.write_all(bytes).is_ok()
    }

    /// Writes all of `bytes`, returning the error if any.
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// Reads once (already-buffered bytes first); empty on EOF or error.
    pub fn read_some(&mut self) -> Vec<u8> {
        if self.buf.is_empty() && !self.fill() {
            return Vec::new();
        }
        std::mem::take(&mut self.buf)
    }

    /// Reads and discards until EOF or error; true on a clean EOF or a
    /// reset, false on a timeout of `limit`.
    pub fn wait_eof(&mut self, limit: Duration) -> bool {
        self.set_read_timeout(limit);
        let mut chunk = [0u8; 16 * 1024];
        let res = loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
                Err(_) => break true,
            }
        };
        self.set_read_timeout(ORIGIN_IO_TIMEOUT);
        res
    }

    /// Reads whatever arrives (already-buffered bytes first) up to `n`
    /// bytes; fewer on EOF.
    pub fn read_exact_or_eof(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill() {
                break;
            }
        }
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        let _ = match &self.sock {
            Sock::Tcp(s) => s.set_read_timeout(Some(t)),
            Sock::Unix(s) => s.set_read_timeout(Some(t)),
        };
    }

    /// Half-closes the sending side.
    pub fn shutdown_write(&self) {
        let _ = match &self.sock {
            Sock::Tcp(s) => s.shutdown(Shutdown::Write),
            Sock::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

type Handler = dyn Fn(&mut OriginConn) + Send + Sync + 'static;

/// A running origin; see the module docs.
pub struct Origin {
    port: u16,
    unix: Option<PathBuf>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Origin({})", self.port)
    }
}

impl Origin {
    /// Starts an origin on `127.0.0.1:0` running `handler` per connection.
    pub fn start(handler: impl Fn(&mut OriginConn) + Send + Sync + 'static) -> Origin {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("origin bind");
        let port = l.local_addr().unwrap().port();
        Origin::run(port, None, Box::new(move || l.accept().map(|(s, _)| Sock::Tcp(s))), Arc::new(handler))
    }

    /// Starts an origin on a unix socket at `path`.
    pub fn start_unix(path: &Path, handler: impl Fn(&mut OriginConn) + Send + Sync + 'static) -> Origin {
        let l = UnixListener::bind(path).expect("origin bind unix");
        Origin::run(
            0,
            Some(path.to_owned()),
            Box::new(move || l.accept().map(|(s, _)| Sock::Unix(s))),
            Arc::new(handler),
        )
    }

    /// An origin that answers every request (recorded) with `reply(req)`,
    /// keeping the connection open unless the request or the reply says
    /// `Connection: close` or the request is HTTP/1.0 without keep-alive.
    pub fn respond(reply: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static) -> Origin {
        Origin::start(move |c| serve_loop(c, &reply))
    }

    /// As [`Origin::respond`], on a unix socket.
    pub fn respond_unix(path: &Path, reply: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static) -> Origin {
        Origin::start_unix(path, move |c| serve_loop(c, &reply))
    }

    /// An origin that answers every request with the same bytes.
    pub fn fixed(resp: &[u8]) -> Origin {
        let resp = resp.to_vec();
        Origin::respond(move |_| resp.clone())
    }

    fn run(
        port: u16,
        unix: Option<PathBuf>,
        accept: Box<dyn Fn() -> std::io::Result<Sock> + Send>,
        handler: Arc<Handler>,
    ) -> Origin {
        let shared = Arc::new(Shared::default());
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (sh, cs) = (shared.clone(), conns.clone());
        let accept = thread::spawn(move || loop {
            let Ok(sock) = accept() else { continue };
            if sh.stop.load(Ordering::SeqCst) {
                return;
            }
            match &sock {
                Sock::Tcp(s) => {
                    let _ = s.set_read_timeout(Some(ORIGIN_IO_TIMEOUT));
                    let _ = s.set_write_timeout(Some(ORIGIN_IO_TIMEOUT));
                }
                Sock::Unix(s) => {
                    let _ = s.set_read_timeout(Some(ORIGIN_IO_TIMEOUT));
                    let _ = s.set_write_timeout(Some(ORIGIN_IO_TIMEOUT));
                }
            }
            let index = sh.accepted.fetch_add(1, Ordering::SeqCst);
            let (h, sh2) = (handler.clone(), sh.clone());
            let t = thread::spawn(move || {
                let mut c = OriginConn { sock, buf: Vec::new(), index, shared: sh2.clone() };
                h(&mut c);
                drop(c);
                sh2.finished.fetch_add(1, Ordering::SeqCst);
            });
            cs.lock().unwrap().push(t);
        });
        Origin { port, unix, shared, accept: Some(accept), conns }
    }

    /// The TCP port (0 for a unix-socket origin).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections whose handler has returned.
    pub fn finished(&self) -> usize {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Polls until `n` requests are recorded (5 s), then returns them.
    pub fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        assert!(poll(Duration::from_secs(5), || self.requests().len() >= n), "origin saw {:?}", self.requests());
        self.requests()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        match &self.unix {
            Some(p) => drop(UnixStream::connect(p)),
            None => drop(TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))),
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        for t in conns {
            let _ = t.join();
        }
        if let Some(p) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn serve_loop(c: &mut OriginConn, reply: &dyn Fn(&Recorded) -> Vec<u8>) {
    while let Some(req) = c.read_request() {
        let resp = reply(&req);
        if !c.write(&resp) {
            return;
        }
        let req_close = req.head.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || (req.head.version == "HTTP/1.0"
                && !req.head.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")));
        let resp_close = String::from_utf8_lossy(&resp[..find(&resp, b"\r\n\r\n").unwrap_or(resp.len())])
            .to_ascii_lowercase()
            .contains("\r\nconnection: close");
        if req_close || resp_close {
            return;
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn parse_head(raw: String) -> Head {
    let mut lines = raw.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let version = parts.next().unwrap_or_default().to_string();
    let headers = lines.filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_string(), v.trim().to_string()))).collect();
    Head { raw, method, target, version, headers }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A 64-bit FNV-1a-style checksum folded over 8-byte words, for large
/// bodies. (The issue asks for sha256; tests are std only, so an exact byte
/// count plus this checksum over a deterministic pseudo-random stream stands
/// in for it: any dropped, duplicated or reordered block changes it.)
#[derive(Debug, Clone, Copy)]
pub struct Checksum {
    pub len: u64,
    h: u64,
    pos: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Checksum { len: 0, h: 0xcbf2_9ce4_8422_2325, pos: 0 }
    }
}

impl Checksum {
    /// Feeds bytes; the result does not depend on how input is split.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // Position-dependent mix so reordering is detected.
            self.h ^= u64::from(b) ^ (self.pos.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56);
            self.h = self.h.wrapping_mul(0x0000_0100_0000_01b3);
            self.pos += 1;
        }
        self.len += bytes.len() as u64;
    }

    pub fn value(&self) -> (u64, u64) {
        (self.len, self.h)
    }
}

/// Fills `buf` with the deterministic pseudo-random stream starting at
/// byte offset `off` (xorshift over 8-byte words; `off` must be a multiple
/// of 8 and `buf.len()` too).
pub fn fill_stream(off: u64, buf: &mut [u8]) {
    for (i, w) in buf.chunks_mut(8).enumerate() {
        let mut x = (off / 8 + i as u64).wrapping_add(0x2545_f491_4f6c_dd1d);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
    }
}
