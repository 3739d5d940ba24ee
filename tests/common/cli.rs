//! Helpers for tests of the command line and of the process itself: a
//! temporary directory, a bounded run of the binary, a check that a process
//! has gone. Std only.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long one run of the binary (`-t`, `-v`, `-s`, ...) may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// An empty directory under the system temp dir, removed on drop (kept
/// when the test fails and `SLUICE_KEEP=1` is set).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory; `tag` goes into its name.
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sluice-cli-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory as a prefix for `-p`: its path with a trailing slash.
    pub fn prefix(&self) -> String {
        format!("{}/", self.0.display())
    }

    /// `DIR/rel` as a string.
    pub fn join(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }

    /// Writes `DIR/rel`, creating parent directories; returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> String {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.display().to_string()
    }

    /// The text of `DIR/rel` ("" if it does not exist).
    pub fn read(&self, rel: &str) -> String {
        fs::read(self.0.join(rel)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() && std::env::var("SLUICE_KEEP").as_deref() == Ok("1") {
            eprintln!("SLUICE_KEEP=1: kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// The process id the run had.
    pub pid: u32,
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the binary with `args` in the directory `cwd` (so that nothing is
/// written where the tests run), stdin closed; kills it and panics if it has
/// not exited within [`RUN_TIMEOUT`]. Output goes through files, so a run
/// that leaves a daemon behind holding the pipes cannot block the test.
pub fn run(cwd: &Path, args: &[&str]) -> Run {
    let out = cwd.join(format!(".run-{}.out", NEXT.fetch_add(1, Ordering::Relaxed)));
    let err = out.with_extension("err");
    let mut child = Command::new(super::bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("create stdout file"))
        .stderr(fs::File::create(&err).expect("create stderr file"))
        .spawn()
        .expect("run sluice");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sluice") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice {args:?} did not exit within {RUN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let text = |p: &Path| {
        let t = String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
        let _ = fs::remove_file(p);
        t
    };
    Run { pid: child.id(), code: status.code().unwrap_or(-1), stdout: text(&out), stderr: text(&err) }
}

/// True once process `pid` no longer runs: it does not exist, or it is a
/// zombie waiting to be reaped (Linux `/proc`).
pub fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state letter follows the parenthesized command name.
        Ok(stat) => {
            matches!(stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next()), Some(Some('Z' | 'X')))
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns
/// whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
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

/// A port the kernel considers free right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("bind a free port").port()
}

/// True if `127.0.0.1:port` accepts a connection now.
pub fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A connection to `127.0.0.1:port` whose receive buffer is as small as the
/// kernel allows, so that a large response stays in flight while the client
/// does not read. Read/write timeouts as the harness's.
pub fn connect_small_rcvbuf(port: u16) -> TcpStream {
    use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType};
    let fd = sock::socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).expect("socket");
    // Before connect, so the advertised window starts (and stays) small.
    sock::setsockopt(&fd, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
    let addr = sock::SockaddrIn::new(127, 0, 0, 1, port);
    sock::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).expect("connect");
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(super::IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(super::IO_TIMEOUT)).expect("timeout");
    stream
}

/// Reads from `stream` until the end of a response head; returns the head
/// and the body bytes read past it.
pub fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        let n = stream.read(&mut chunk).expect("read a response head");
        assert!(n > 0, "closed before the head ended: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The `Content-Length` of a response head.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"))
}

/// A sluice started in the foreground by a test, killed on drop.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
}

impl Spawned {
    /// Runs the binary with `args` in `cwd`, output to `cwd/stdout.log` and
    /// `cwd/stderr.log`.
    pub fn start(cwd: &Path, args: &[&str]) -> Spawned {
        let out = fs::File::create(cwd.join("stdout.log")).expect("create stdout.log");
        let err = fs::File::create(cwd.join("stderr.log")).expect("create stderr.log");
        let child = Command::new(super::bin())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("run sluice");
        Spawned { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit code if it has exited (-1 for a signal), else `None`.
    pub fn exited(&mut self) -> Option<i32> {
        self.child.try_wait().expect("wait").map(|s| s.code().unwrap_or(-1))
    }

    /// Waits up to `limit` for the exit; its code, or `None`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(limit, || {
            code = self.exited();
            code.is_some()
        });
        code
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process the test did not start itself (a daemon), killed on drop if
/// it still runs.
#[derive(Debug)]
pub struct PidGuard(pub u32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if !process_gone(self.0) {
            let _ = Command::new("kill").arg("-KILL").arg(self.0.to_string()).stderr(Stdio::null()).status();
        }
    }
}
