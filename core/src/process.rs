//! The process around the workers: the pid file, daemonizing, `-s signal`
//! and the signals the master waits for.
//!
//! Signals are nginx's:
//!
//! | signal | `-s` name | meaning |
//! |---|---|---|
//! | HUP  | `reload` | re-read the configuration, replace the workers |
//! | QUIT | `quit`   | stop gracefully (finish in-flight requests) |
//! | TERM, INT | `stop` | stop fast |
//! | USR1 | `reopen` | reopen the log files |
//!
//! Workers are threads, so signals are not handled asynchronously: the main
//! thread blocks them with [`SignalWaiter::install`] *before* it spawns any
//! thread (new threads inherit the mask, so the kernel never delivers one
//! of these signals to a worker) and then receives them synchronously with
//! [`SignalWaiter::wait`]. SIGPIPE is ignored for the whole process so that
//! writing to a socket the client closed fails with `EPIPE` instead of
//! killing the server.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{self as nix_signal, SigHandler, SigSet, Signal as Sig};
use nix::unistd::Pid;

use crate::log::{os_error, Level};

/// Writes this process's id as `<pid>\n`, creating the file 0644 or
/// truncating an old one.
pub fn write_pid_file(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(path)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
}

/// Reads a pid file written by [`write_pid_file`]. A file that does not
/// hold a positive decimal number (trailing CR/LF allowed) is an
/// `InvalidData` error worded as nginx's: `invalid PID number "x" in "/path"`.
pub fn read_pid_file(path: &Path) -> io::Result<Pid> {
    load_pid(path).map_err(|e| match e {
        PidFileError::Open(e) | PidFileError::Read(e) => e,
        invalid @ PidFileError::Invalid(_) => io::Error::new(io::ErrorKind::InvalidData, invalid.message(path)),
    })
}

/// Removes the pid file at exit; a failure is logged (alert), as nginx does.
pub fn remove_pid_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        crate::log_error!(Level::Alert, None, "unlink() \"{}\" failed ({})", path.display(), os_error(&e));
    }
}

/// Why a pid could not be read, kept apart so each reads as nginx's message.
#[derive(Debug)]
enum PidFileError {
    Open(io::Error),
    Read(io::Error),
    /// The file's content, trailing CR/LF removed.
    Invalid(String),
}

impl PidFileError {
    fn message(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            PidFileError::Open(e) => format!("open() \"{path}\" failed ({})", os_error(e)),
            PidFileError::Read(e) => format!("read() \"{path}\" failed ({})", os_error(e)),
            PidFileError::Invalid(text) => format!("invalid PID number \"{text}\" in \"{path}\""),
        }
    }
}

/// The longest pid file content looked at: a 64-bit number and CR LF, as
/// much as nginx reads.
const PID_FILE_MAX: u64 = 22;

fn load_pid(path: &Path) -> Result<Pid, PidFileError> {
    let file = File::open(path).map_err(PidFileError::Open)?;
    let mut buf = Vec::with_capacity(PID_FILE_MAX as usize);
    file.take(PID_FILE_MAX).read_to_end(&mut buf).map_err(PidFileError::Read)?;
    while matches!(buf.last(), Some(b'\r' | b'\n')) {
        buf.pop();
    }
    let text = String::from_utf8_lossy(&buf);
    // Digits only, as nginx's ngx_atoi: no sign, no spaces. Unlike nginx,
    // 0 is refused too: kill(0, sig) would signal our own process group.
    let pid = Some(&*text)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i32>().ok())
        .filter(|&n| n > 0);
    match pid {
        Some(n) => Ok(Pid::from_raw(n)),
        None => Err(PidFileError::Invalid(text.into_owned())),
    }
}

/// `sluice -s NAME`: reads the master's pid from `pid_file` and sends it the
/// signal named `stop`, `quit`, `reopen` or `reload`. The error is the line
/// to print, worded as nginx's: `open() "/run/sluice.pid" failed (2: No
/// such file or directory)`, `invalid PID number "" in "/run/sluice.pid"`,
/// `kill(1234, 1) failed (3: No such process)`, or for an unknown name
/// `invalid option: "-s NAME"`.
pub fn send_signal(pid_file: &Path, name: &str) -> Result<(), String> {
    let signal = Signal::from_name(name).ok_or_else(|| format!("invalid option: \"-s {name}\""))?;
    let pid = load_pid(pid_file).map_err(|e| e.message(pid_file))?;
    let sig = signal.to_nix();
    nix_signal::kill(pid, sig).map_err(|errno| {
        let e = io::Error::from(errno);
        format!("kill({pid}, {}) failed ({})", sig as i32, os_error(&e))
    })
}

/// Detaches from the terminal as nginx's `daemon on;`: forks (the parent
/// exits 0), starts a new session, and points stdin and stdout at
/// `/dev/null`. Stderr is left alone so start-up errors still reach the
/// terminal until the error log is open (then see
/// [`ErrorLog::redirect_stderr`](crate::log::ErrorLog::redirect_stderr)).
///
/// Must be called while the process has a single thread — before any worker,
/// timer or signal thread is spawned — because `fork` copies only the
/// calling thread: any other thread's locks would stay held forever in the
/// child. Unlike nginx, the umask is left as it is (nginx sets 0, which
/// would make every file Rust's std creates with its default 0666 mode
/// world-writable).
pub fn daemonize() -> io::Result<()> {
    // SAFETY: the documented precondition is that no other thread exists,
    // so the child is a complete copy of the process and may run any code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => std::process::exit(0),
        nix::unistd::ForkResult::Child => {}
    }
    nix::unistd::setsid()?;
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), io::stdin().as_raw_fd())?;
    nix::unistd::dup2(null.as_raw_fd(), io::stdout().as_raw_fd())?;
    Ok(())
}

/// What the master is asked to do, by signal or by `sluice -s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// HUP, `-s reload`: re-read the configuration without dropping
    /// connections.
    Reload,
    /// QUIT, `-s quit`: stop accepting, finish what is in flight, exit.
    Quit,
    /// TERM or INT, `-s stop`: exit now.
    Stop,
    /// USR1, `-s reopen`: reopen the log files.
    Reopen,
}

impl Signal {
    /// The signal named as `-s` takes it: `stop`, `quit`, `reopen`, `reload`.
    pub fn from_name(name: &str) -> Option<Signal> {
        match name {
            "stop" => Some(Signal::Stop),
            "quit" => Some(Signal::Quit),
            "reopen" => Some(Signal::Reopen),
            "reload" => Some(Signal::Reload),
            _ => None,
        }
    }

    /// The `-s` name of this signal.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "stop",
            Signal::Quit => "quit",
            Signal::Reopen => "reopen",
            Signal::Reload => "reload",
        }
    }

    /// The OS signal `-s` sends for this meaning.
    fn to_nix(self) -> Sig {
        match self {
            Signal::Reload => Sig::SIGHUP,
            Signal::Quit => Sig::SIGQUIT,
            Signal::Stop => Sig::SIGTERM,
            Signal::Reopen => Sig::SIGUSR1,
        }
    }

    fn from_nix(sig: Sig) -> Option<Signal> {
        match sig {
            Sig::SIGHUP => Some(Signal::Reload),
            Sig::SIGQUIT => Some(Signal::Quit),
            Sig::SIGTERM | Sig::SIGINT => Some(Signal::Stop),
            Sig::SIGUSR1 => Some(Signal::Reopen),
            _ => None,
        }
    }
}

/// Receives the master's signals synchronously. Created in `main` before
/// any thread is spawned; it may then be moved to whichever thread waits,
/// since every thread shares the blocked mask.
#[derive(Debug)]
pub struct SignalWaiter {
    set: SigSet,
}

impl SignalWaiter {
    /// Blocks HUP, QUIT, TERM, INT and USR1 in the calling thread (threads
    /// spawned afterwards inherit the mask) and ignores SIGPIPE in the
    /// whole process.
    pub fn install() -> io::Result<SignalWaiter> {
        let mut set = SigSet::empty();
        for sig in [Sig::SIGHUP, Sig::SIGQUIT, Sig::SIGTERM, Sig::SIGINT, Sig::SIGUSR1] {
            set.add(sig);
        }
        // SAFETY: SIG_IGN installs no handler code, so nothing can run in
        // signal context.
        unsafe { nix_signal::signal(Sig::SIGPIPE, SigHandler::SigIgn) }?;
        set.thread_block()?;
        Ok(SignalWaiter { set })
    }

    /// Blocks until one of the signals arrives.
    pub fn wait(&self) -> Signal {
        loop {
            // sigwait only fails for an invalid set, which ours is not; any
            // signal outside the set cannot be returned either.
            if let Some(sig) = self.set.wait().ok().and_then(Signal::from_nix) {
                return sig;
            }
        }
    }

    /// Waits at most `d` for a signal (`sigtimedwait`); `None` on timeout.
    pub fn wait_timeout(&self, d: Duration) -> Option<Signal> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = libc::timespec {
                // Clamped: a wait of decades is as good as forever.
                tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            // SAFETY: the set is a valid, initialised sigset_t (SigSet is
            // repr(transparent) over it); a null siginfo pointer is allowed;
            // `ts` outlives the call.
            let n = unsafe { libc::sigtimedwait(self.set.as_ref(), std::ptr::null_mut(), &ts) };
            if n >= 0 {
                if let Some(sig) = Sig::try_from(n).ok().and_then(Signal::from_nix) {
                    return Some(sig);
                }
                continue;
            }
            match Errno::last() {
                Errno::EINTR if !left.is_zero() => continue,
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_path(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sluice-proc-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn pid_file_round_trip() {
        let path = temp_path("sluice.pid");
        write_pid_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        assert_eq!(read_pid_file(&path).unwrap(), Pid::this());
        // An old, longer pid is truncated away.
        std::fs::write(&path, "99999999999\n").unwrap();
        write_pid_file(&path).unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), Pid::this());
        remove_pid_file(&path);
        assert!(!path.exists());
    }

    #[test]
    fn pid_file_allows_crlf() {
        let path = temp_path("sluice.pid");
        std::fs::write(&path, "1234\r\n").unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), Pid::from_raw(1234));
    }

    #[test]
    fn bad_pid_files_read_like_nginx() {
        let path = temp_path("sluice.pid");
        let p = path.display();
        for (content, shown) in [("", ""), ("\n", ""), ("abc\n", "abc"), ("-5", "-5"), ("0\n", "0"), (" 12", " 12")] {
            std::fs::write(&path, content).unwrap();
            let want = format!("invalid PID number \"{shown}\" in \"{p}\"");
            assert_eq!(send_signal(&path, "reload"), Err(want.clone()));
            let err = read_pid_file(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn missing_pid_file_reads_like_nginx() {
        let path = temp_path("absent.pid");
        assert_eq!(
            send_signal(&path, "quit"),
            Err(format!("open() \"{}\" failed (2: No such file or directory)", path.display()))
        );
        assert_eq!(read_pid_file(&path).unwrap_err().raw_os_error(), Some(2));
    }

    #[test]
    fn failed_kill_reads_like_nginx() {
        let path = temp_path("sluice.pid");
        // Above any pid_max, so no such process can exist.
        std::fs::write(&path, "2147483647\n").unwrap();
        assert_eq!(send_signal(&path, "reload"), Err("kill(2147483647, 1) failed (3: No such process)".to_string()));
    }

    #[test]
    fn unknown_signal_name_is_refused() {
        let path = temp_path("sluice.pid");
        assert_eq!(send_signal(&path, "restart"), Err("invalid option: \"-s restart\"".to_string()));
    }

    #[test]
    fn stop_terminates_the_process_in_the_pid_file() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let path = temp_path("sluice.pid");
        std::fs::write(&path, format!("{}\n", child.id())).unwrap();
        send_signal(&path, "stop").unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn names_round_trip() {
        for sig in [Signal::Stop, Signal::Quit, Signal::Reopen, Signal::Reload] {
            assert_eq!(Signal::from_name(sig.name()), Some(sig));
        }
        assert_eq!(Signal::from_name("STOP"), None);
    }

    /// Signals are raised at this test's own thread only (POSIX `raise` is
    /// `pthread_kill(pthread_self(), sig)`), so the other test threads,
    /// which do not block them, never see them.
    #[test]
    fn waiter_receives_signals_sent_to_its_thread() {
        let waiter = SignalWaiter::install().unwrap();
        let cases = [
            (Sig::SIGHUP, Signal::Reload),
            (Sig::SIGQUIT, Signal::Quit),
            (Sig::SIGTERM, Signal::Stop),
            (Sig::SIGINT, Signal::Stop),
            (Sig::SIGUSR1, Signal::Reopen),
        ];
        for (sig, want) in cases {
            nix_signal::raise(sig).unwrap();
            assert_eq!(waiter.wait_timeout(Duration::from_secs(5)), Some(want), "{sig}");
        }
        nix_signal::raise(Sig::SIGHUP).unwrap();
        assert_eq!(waiter.wait(), Signal::Reload);
    }

    #[test]
    fn waiter_times_out_without_a_signal() {
        let waiter = SignalWaiter::install().unwrap();
        let start = Instant::now();
        assert_eq!(waiter.wait_timeout(Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
