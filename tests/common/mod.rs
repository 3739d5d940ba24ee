//! End-to-end test harness: runs the real `sluice` binary on loopback.
//!
//! Each test file under `tests/` says `mod common;` and then:
//!
//! ```ignore
//! let s = common::Server::start(
//!     "http { server { listen 127.0.0.1:%%PORT%%; location / { return 204; } } }",
//! );
//! assert_eq!(s.get("/").status, 204);
//! ```
//!
//! `Server::start` writes `DIR/sluice.conf` (a prelude of `daemon off;`,
//! one worker, `error_log DIR/error.log info;`, `pid DIR/sluice.pid;` and
//! `events {}` comes first unless the text starts with `#noprelude`),
//! substitutes `%%PORT%%`, `%%PORT2%%` and `%%DIR%%`, runs
//! `sluice -p DIR/ -c DIR/sluice.conf`, and returns once `%%PORT%%` accepts a
//! connection. That probe connection is closed without a request, so the
//! error log may note a client that closed before sending one.
//!
//! Dropping the `Server` sends SIGTERM, then SIGKILL if it lingers, and removes
//! DIR — unless the test is failing and `SLUICE_KEEP=1` is set, in which case
//! DIR stays for inspection and its path is printed. A failing test also
//! prints the tail of the error log.
//!
//! The binary is the one Cargo builds for integration tests (or the one
//! named by `SLUICE_TEST_BIN`); a crate with its own server binary (an
//! out-of-tree example) names it with `Server::start_with_bin`. This module
//! never builds anything. Std only. Helper modules are compiled into every
//! test crate, and each uses a different subset, hence the `allow` below.
#![allow(dead_code)]

pub mod cli;
mod response;

#[allow(unused_imports)] // each test crate uses a different subset
pub use response::{parse_all, parse_head_response, parse_response, show, try_parse_response, Response};

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, built by Cargo for integration tests of the
/// `sluice` package; "" in a crate without a `sluice` binary (such a crate
/// names its own with [`Server::start_with_bin`]).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_sluice") {
    Some(b) => b,
    None => "",
};

/// The binary to run: `SLUICE_TEST_BIN` if set (e.g. a stock nginx, to check
/// that a test expects what nginx does), else [`BIN`].
pub fn bin() -> String {
    std::env::var("SLUICE_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// How long the server may take to start listening, or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Read and write timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the error log a failing test prints.
const LOG_TAIL: usize = 8 * 1024;

/// Error-log wordings that end a reload: `[emerg]` (the new configuration was
/// rejected and the old one stays) or nginx's notice that an old worker
/// exited (the new configuration is in force). Sluice is expected to log the
/// same at `info` level.
pub const RELOAD_DONE_MARKERS: &[&str] = &["[emerg]", "exited with code"];

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A running sluice with its own temp dir and loopback ports.
#[derive(Debug)]
pub struct Server {
    dir: PathBuf,
    port: u16,
    port2: u16,
    child: Child,
}

impl Server {
    /// Starts sluice with `conf_body` (see the module docs); panics with the
    /// error log and the configuration if it exits or never listens.
    pub fn start(conf_body: &str) -> Server {
        Server::try_start(conf_body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Server::start`], but returns the failure text (error log, stderr,
    /// configuration) instead of panicking: for tests of rejected configs.
    pub fn try_start(conf_body: &str) -> Result<Server, String> {
        Server::try_start_with_bin(&bin(), conf_body)
    }

    /// As [`Server::start`], running `bin` (e.g. a custom server binary
    /// built with sluice's modules plus its own) instead of [`bin()`].
    pub fn start_with_bin(bin: &str, conf_body: &str) -> Server {
        Server::try_start_with_bin(bin, conf_body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Server::try_start`], running `bin`.
    pub fn try_start_with_bin(bin: &str, conf_body: &str) -> Result<Server, String> {
        let dir = fresh_dir();
        let (port, port2) = free_ports();
        let conf = render_conf(&dir, port, port2, conf_body);
        let child = fs::write(dir.join("sluice.conf"), conf)
            .map_err(|e| format!("cannot write sluice.conf: {e}"))
            .and_then(|()| spawn(bin, &dir));
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        // From here on, Drop stops the process and cleans up.
        let mut server = Server { dir, port, port2, child };
        match server.wait_listening() {
            Ok(()) => Ok(server),
            Err(why) => Err(server.failure_report(&why)),
        }
    }

    /// The port `%%PORT%%` stands for.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `%%PORT2%%` stands for (free at start-up, for a second
    /// listener or an upstream).
    pub fn port2(&self) -> u16 {
        self.port2
    }

    /// The server's prefix directory, `%%DIR%%`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `contents` to `DIR/rel`, creating parent directories.
    pub fn write_file(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The error log so far ("" if it does not exist yet).
    pub fn error_log(&self) -> String {
        read_lossy(&self.dir.join("error.log"))
    }

    /// Sends a signal by name (`"HUP"`, `"QUIT"`, `"USR1"`, ...) with `kill`.
    pub fn signal(&self, sig: &str) {
        let sig = sig.trim_start_matches('-');
        let status =
            Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Replaces the configuration (same placeholders and prelude rule as
    /// `start`), sends SIGHUP, and waits until the error log written since
    /// shows one of [`RELOAD_DONE_MARKERS`]. Returns that new log text.
    /// Panics if the server dies or the reload does not finish in 5 s.
    pub fn reload_with(&mut self, conf_body: &str) -> String {
        fs::write(self.conf_path(), self.render_conf(conf_body)).expect("rewrite sluice.conf");
        let before = self.error_log().len();
        self.signal("HUP");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.error_log();
            let new = log.get(before..).unwrap_or_default();
            if RELOAD_DONE_MARKERS.iter().any(|m| new.contains(m)) {
                return new.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{}", self.failure_report(&format!("died on reload: {status}")));
            }
            if Instant::now() > deadline {
                panic!("{}", self.failure_report("reload did not finish within 5 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the server process to exit; returns its exit
    /// status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Opens a client connection to `%%PORT%%`.
    pub fn connect(&self) -> Conn {
        Conn::open(self.port)
    }

    /// Sends `bytes` on a new connection and returns everything the server
    /// sends until it closes. Panics if it does not close within 5 s, so
    /// requests should say HTTP/1.0 or `Connection: close`.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut conn = self.connect();
        conn.send(bytes);
        conn.read_to_end()
    }

    /// Sends each request on one connection, reading its response before
    /// sending the next; stops early when the server closes. A request
    /// starting with `HEAD ` gets a bodiless response.
    pub fn raw_keepalive(&self, requests: &[&[u8]]) -> Vec<Response> {
        let mut conn = self.connect();
        let mut out = Vec::new();
        for req in requests {
            if !conn.try_send(req) {
                break;
            }
            match conn.read_response_for(req.starts_with(b"HEAD ")) {
                Some(resp) => out.push(resp),
                None => break,
            }
        }
        out
    }

    /// `GET path` over HTTP/1.1 with `Host: localhost` and
    /// `Connection: close`; panics unless exactly one response comes back.
    pub fn get(&self, path: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let bytes = self.raw(req.as_bytes());
        let (resp, rest) = parse_response(&bytes);
        assert!(rest.is_empty(), "bytes after the response: {:?}", show(rest));
        resp
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("sluice.conf")
    }

    fn render_conf(&self, body: &str) -> String {
        render_conf(&self.dir, self.port, self.port2, body)
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("sluice exited at start-up: {status}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("sluice did not listen on {addr} within 5 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn failure_report(&self, why: &str) -> String {
        format!(
            "{why}\n--- {dir}/error.log\n{log}\n--- stderr\n{stderr}\n--- sluice.conf\n{conf}",
            dir = self.dir.display(),
            log = self.error_log(),
            stderr = read_lossy(&self.dir.join("stderr.log")),
            conf = read_lossy(&self.conf_path()),
        )
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // `kill` may race with an exit; the wait below settles it either way.
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("sluice {} ignored SIGTERM for 5 s; killing it", self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let failing = thread::panicking();
        if failing {
            let log = self.error_log();
            let tail = &log[floor_char_boundary(&log, log.len().saturating_sub(LOG_TAIL))..];
            eprintln!("--- {}/error.log (tail)\n{tail}", self.dir.display());
        }
        if failing && std::env::var("SLUICE_KEEP").as_deref() == Ok("1") {
            eprintln!("SLUICE_KEEP=1: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A client connection with a 5 s read/write timeout and a read buffer, for
/// keep-alive and pipelining tests.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn open(port: u16) -> Conn {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("set timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("set timeout");
        Conn { stream, buf: Vec::new() }
    }

    /// Writes all of `bytes`; panics on error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    /// Writes all of `bytes`; false if the server has closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Closes the sending half (the server sees EOF).
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Reads one complete response to a non-HEAD request; `None` if the
    /// server closed before sending any of it. Panics on a malformed or
    /// cut-off response, or after 5 s without one.
    pub fn read_response(&mut self) -> Option<Response> {
        self.read_response_for(false)
    }

    /// As [`Conn::read_response`]; `head` says the request was HEAD.
    pub fn read_response_for(&mut self, head: bool) -> Option<Response> {
        let mut eof = false;
        loop {
            match try_parse_response(&self.buf, head, eof) {
                Ok(Some((resp, used))) => {
                    self.buf.drain(..used);
                    return Some(resp);
                }
                Ok(None) if eof => return None,
                Ok(None) => eof = self.fill() == 0,
                Err(e) => panic!("bad response: {e}\nbytes: {:?}", show(&self.buf)),
            }
        }
    }

    /// Everything until the server closes (including bytes already
    /// buffered). Panics if it does not close within 5 s.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// True if the server closes the connection within `wait` (bytes that
    /// arrive meanwhile are kept for later reads).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).expect("set timeout");
        let mut chunk = [0u8; 16 * 1024];
        let closed = loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).expect("set timeout");
        closed
    }

    /// Bytes received but not yet returned by a read.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads once into the buffer; returns the count (0 = EOF). Panics on a
    /// timeout or an error, showing what arrived so far.
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed ({e}); received so far: {:?}", show(&self.buf)),
            }
        }
    }
}

/// A fresh, empty directory under the system temp dir, unique per process
/// and per server.
fn fresh_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-e2e-{}-{n}", std::process::id()));
    // A stale directory can only be left by an earlier process with our pid.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Two distinct ports the kernel considers free right now. Both listeners
/// are held at once so the two differ; another process may still take one
/// before sluice binds it, which is rare enough for tests.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

/// The configuration text: placeholders substituted, prelude added unless
/// the text starts with `#noprelude`.
fn render_conf(dir: &Path, port: u16, port2: u16, body: &str) -> String {
    let dir = dir.display().to_string();
    let body =
        body.replace("%%PORT2%%", &port2.to_string()).replace("%%PORT%%", &port.to_string()).replace("%%DIR%%", &dir);
    if body.trim_start().starts_with("#noprelude") {
        return body;
    }
    format!(
        "daemon off;\nworker_processes 1;\nerror_log {dir}/error.log info;\n\
         pid {dir}/sluice.pid;\nevents {{}}\n\n{body}\n"
    )
}

/// Runs `bin -p DIR/ -c DIR/sluice.conf`, output to files in DIR.
fn spawn(bin: &str, dir: &Path) -> Result<Child, String> {
    if bin.is_empty() {
        return Err("no server binary: set SLUICE_TEST_BIN or use Server::start_with_bin".to_string());
    }
    let out = fs::File::create(dir.join("stdout.log")).map_err(|e| e.to_string())?;
    let err = fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    Command::new(bin)
        .arg("-p")
        .arg(format!("{}/", dir.display()))
        .arg("-c")
        .arg(dir.join("sluice.conf"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {bin}: {e}"))
}

fn read_lossy(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
