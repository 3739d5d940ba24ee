//! The error log: nginx's eight levels and its line format.
//!
//! ```text
//! 2026/11/22 00:30:00 [error] 1234#1235: *7 open() "/srv/x" failed (2: No such file or directory)
//! ```
//!
//! That is local time, `[level]`, the process id and the OS thread id
//! (`gettid`), `*N` when the line is about connection N, then the message.
//!
//! * Each line goes out in one `write(2)` on a file opened `O_APPEND`, so
//!   lines written by several worker threads never interleave.
//! * A file is created (0644) when the log is opened, as nginx creates its
//!   error log at start-up, before anything is written to it.
//! * `error_log` may appear several times: an [`ErrorLog`] holds any number
//!   of targets, each with its own level.
//! * [`enabled`] is one atomic load, so callers (and [`log_error!`]) skip
//!   formatting a message no target would write.
//! * Until [`install`] is called — that is, before the configuration is read
//!   — lines at `error` or more severe go to stderr.
//! * On USR1, [`reopen`] opens each file again by its path (the old one has
//!   usually been renamed by logrotate) and `dup2`s the new descriptor over
//!   the old, so a thread writing at that moment writes to one file or the
//!   other, never to a closed descriptor.
//! * A line is cut at 2048 bytes, nginx's `NGX_MAX_ERROR_STR`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The longest line written, newline included (nginx's `NGX_MAX_ERROR_STR`).
pub const MAX_LINE: usize = 2048;

/// A message's severity, most severe first: a target configured at `Warn`
/// writes `Emerg` to `Warn` and drops `Notice`, `Info` and `Debug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The server cannot run (bad configuration, cannot bind).
    Emerg,
    /// A fault that needs attention at once.
    Alert,
    /// A critical condition.
    Crit,
    /// An error handling a request or connection; the default level.
    Error,
    /// Something unexpected but handled.
    Warn,
    /// Normal but notable events (start, reload, signals).
    Notice,
    /// Details of normal operation.
    Info,
    /// Debugging detail.
    Debug,
}

const LEVEL_NAMES: [&str; 8] = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];

impl Level {
    const ALL: [Level; 8] =
        [Level::Emerg, Level::Alert, Level::Crit, Level::Error, Level::Warn, Level::Notice, Level::Info, Level::Debug];

    /// The level named as in `error_log file warn;`, or `None`.
    pub fn parse(s: &str) -> Option<Level> {
        let i = LEVEL_NAMES.iter().position(|&n| n == s)?;
        Some(Level::ALL[i])
    }

    /// The name written between brackets in a log line.
    pub fn as_str(self) -> &'static str {
        LEVEL_NAMES[self as usize]
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an `error_log` directive sends its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The process's standard error (`error_log stderr;`).
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// One opened target.
#[derive(Debug)]
struct Sink {
    level: Level,
    out: Out,
}

#[derive(Debug)]
enum Out {
    Stderr,
    File { path: PathBuf, file: File },
}

/// A set of opened log targets, each with its level. Build one from the
/// `error_log` directives, then [`install`] it for the whole process.
#[derive(Debug)]
pub struct ErrorLog {
    sinks: Vec<Sink>,
    /// The most verbose level of any target: what [`enabled`] compares with.
    max: Level,
    /// Whether fd 2 was pointed at the first file (see `redirect_stderr`),
    /// so `reopen` must point it at the new file too.
    stderr_redirected: AtomicBool,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o644).open(path)
}

impl ErrorLog {
    /// Opens (creating if needed) every file target. Fails on the first file
    /// that cannot be opened; the caller reports it as nginx does:
    /// `open() "/path" failed (13: Permission denied)`. No targets at all
    /// gives a log that writes nothing.
    pub fn open(targets: &[(Target, Level)]) -> io::Result<ErrorLog> {
        let mut sinks = Vec::with_capacity(targets.len());
        for (target, level) in targets {
            let out = match target {
                Target::Stderr => Out::Stderr,
                Target::File(path) => Out::File { path: path.clone(), file: open_append(path)? },
            };
            sinks.push(Sink { level: *level, out });
        }
        let max = sinks.iter().map(|s| s.level).max().unwrap_or(Level::Emerg);
        Ok(ErrorLog { sinks, max, stderr_redirected: AtomicBool::new(false) })
    }

    /// A log to stderr only, at `level`.
    pub fn stderr(level: Level) -> ErrorLog {
        ErrorLog {
            sinks: vec![Sink { level, out: Out::Stderr }],
            max: level,
            stderr_redirected: AtomicBool::new(false),
        }
    }

    /// The most verbose level any target writes.
    pub fn level(&self) -> Level {
        self.max
    }

    /// Writes one line to every target whose level admits `level`.
    pub fn write(&self, level: Level, conn: Option<u64>, args: fmt::Arguments<'_>) {
        if level > self.max {
            return;
        }
        let line = format_line(level, conn, args);
        for sink in self.sinks.iter().filter(|s| level <= s.level) {
            // A failed log write has nowhere to be reported; nginx ignores
            // it too. One write(2) per line keeps lines whole.
            let _ = match &sink.out {
                Out::Stderr => write_stderr(&line),
                Out::File { file, .. } => (&*file).write(&line),
            };
        }
    }

    /// Reopens every file target by its path (USR1, after logrotate renamed
    /// the old file). Each new descriptor is `dup2`ed over the old one, so
    /// concurrent writers never see a closed descriptor. A file that cannot
    /// be reopened keeps its old descriptor; the first such error is
    /// returned after trying them all.
    pub fn reopen(&self) -> io::Result<()> {
        let mut first_err = None;
        for sink in &self.sinks {
            if let Out::File { path, file } = &sink.out {
                if let Err(e) = reopen_over(path, file) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if self.stderr_redirected.load(Ordering::Relaxed) {
            self.redirect_stderr()?;
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Points fd 2 at the first file target, as nginx does once its logs are
    /// open (and after daemonizing): whatever still writes to stderr — a
    /// panic message, a library — then lands in the error log instead of a
    /// closed terminal. Does nothing if no target is a file, or if the first
    /// target is stderr itself.
    pub fn redirect_stderr(&self) -> io::Result<()> {
        let Some(first) = self.sinks.first() else {
            return Ok(());
        };
        if let Out::File { file, .. } = &first.out {
            nix::unistd::dup2(file.as_raw_fd(), io::stderr().as_raw_fd())?;
            self.stderr_redirected.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Opens `path` afresh and makes `file`'s descriptor refer to it.
fn reopen_over(path: &Path, file: &File) -> io::Result<()> {
    let fresh = open_append(path)?;
    // dup2 swaps what the descriptor number refers to in one step; `fresh`
    // is closed on drop, the number owned by `file` lives on.
    nix::unistd::dup2(fresh.as_raw_fd(), file.as_raw_fd())?;
    Ok(())
}

fn write_stderr(line: &[u8]) -> io::Result<usize> {
    nix::unistd::write(io::stderr(), line).map_err(io::Error::from)
}

thread_local! {
    /// This thread's error-log stamp and the second it was made for: a busy
    /// log writes many lines per second, and formatting local time is the
    /// costly part of a line.
    static STAMP: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn push_stamp(out: &mut String) {
    let now = SystemTime::now();
    let sec = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    STAMP.with(|s| {
        let mut s = s.borrow_mut();
        if s.0 != sec {
            *s = (sec, crate::time::log_time_local(now));
        }
        out.push_str(&s.1);
    });
}

/// Builds one whole line, newline included, at most [`MAX_LINE`] bytes.
fn format_line(level: Level, conn: Option<u64>, args: fmt::Arguments<'_>) -> Vec<u8> {
    let mut s = String::with_capacity(128);
    push_stamp(&mut s);
    let pid = std::process::id();
    let tid = nix::unistd::gettid();
    // Writing into a String cannot fail.
    let _ = write!(s, " [{}] {}#{}: ", level.as_str(), pid, tid);
    if let Some(n) = conn {
        let _ = write!(s, "*{n} ");
    }
    let _ = s.write_fmt(args);
    if s.len() > MAX_LINE - 1 {
        let mut cut = MAX_LINE - 1;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s.push('\n');
    s.into_bytes()
}

/// An OS error as nginx words it inside parentheses: `2: No such file or
/// directory`, so callers write `open() "{path}" failed ({})`. Errors that
/// carry no errno are shown by their own text.
pub fn os_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{code}: {}", nix::errno::Errno::from_raw(code).desc()),
        None => e.to_string(),
    }
}

/// The installed log; `None` until the configuration has been read.
static LOG: RwLock<Option<Arc<ErrorLog>>> = RwLock::new(None);
/// `LOG`'s most verbose level (as `Level as u8`), for [`enabled`].
static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);

fn installed() -> Option<Arc<ErrorLog>> {
    // A writer that panicked mid-install left a valid Option behind; use it.
    LOG.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Makes `log` the process-wide error log; a reload installs the new
/// configuration's log, and the old one closes when its last user is done.
pub fn install(log: ErrorLog) {
    let max = log.max as u8;
    let log = Arc::new(log);
    *LOG.write().unwrap_or_else(|e| e.into_inner()) = Some(log);
    MAX_LEVEL.store(max, Ordering::Relaxed);
}

/// Whether a line at `level` would be written anywhere; one atomic load.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes a line to the installed log (or, before [`install`], to stderr
/// when `level` is `error` or more severe). `conn` is the connection
/// number shown as `*N`. Prefer [`log_error!`], which skips formatting when
/// the level is disabled.
pub fn write(level: Level, conn: Option<u64>, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    match installed() {
        Some(log) => log.write(level, conn, args),
        None => {
            let _ = write_stderr(&format_line(level, conn, args));
        }
    }
}

/// Logs opened besides the installed one (`error_log` in `http`, `server`
/// or `location`), so that USR1 reopens them too.
static EXTRA: RwLock<Vec<std::sync::Weak<ErrorLog>>> = RwLock::new(Vec::new());

/// Registers a log opened for a part of the configuration, for [`reopen`].
/// Logs dropped since (an older configuration's) are forgotten.
pub fn track(log: &Arc<ErrorLog>) {
    let mut extra = EXTRA.write().unwrap_or_else(|e| e.into_inner());
    extra.retain(|w| w.strong_count() > 0);
    extra.push(Arc::downgrade(log));
}

/// Reopens the installed log's files and every tracked log's (USR1).
/// Nothing to do before [`install`]. The first error is returned after all
/// were tried.
pub fn reopen() -> io::Result<()> {
    let mut result = installed().map_or(Ok(()), |log| log.reopen());
    let extra: Vec<Arc<ErrorLog>> =
        EXTRA.read().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|w| w.upgrade()).collect();
    for log in extra {
        if let Err(e) = log.reopen() {
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// Logs a formatted message at a level, for a connection or none:
///
/// ```
/// use sluice_core::log::Level;
/// let path = "/srv/www/x";
/// sluice_core::log_error!(Level::Error, Some(7), "open() \"{}\" failed", path);
/// sluice_core::log_error!(Level::Notice, None, "signal process started");
/// ```
///
/// The arguments are not evaluated when no target would write the line.
#[macro_export]
macro_rules! log_error {
    ($lvl:expr, $conn:expr, $($arg:tt)*) => {{
        let lvl: $crate::log::Level = $lvl;
        if $crate::log::enabled(lvl) {
            $crate::log::write(lvl, $conn, ::core::format_args!($($arg)*));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A fresh path under the temp dir, unique to this process and call.
    fn temp_path(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sluice-log-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// Replaces digits with '9' so a local-time stamp can be checked by shape.
    fn shape(s: &str) -> String {
        s.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect()
    }

    #[test]
    fn level_names_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse("warning"), None);
        assert_eq!(Level::parse("ERROR"), None);
        assert!(Level::Emerg < Level::Error && Level::Error < Level::Debug);
    }

    #[test]
    fn os_errors_read_like_nginx_s() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(os_error(&e), "2: No such file or directory");
        let e = io::Error::new(io::ErrorKind::InvalidData, "bad data");
        assert_eq!(os_error(&e), "bad data");
    }

    #[test]
    fn file_exists_once_opened() {
        let path = temp_path("error.log");
        let _log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        assert_eq!(read(&path), "");
    }

    #[test]
    fn open_reports_the_os_error() {
        let path = temp_path("no-such-dir").join("error.log");
        let err = ErrorLog::open(&[(Target::File(path), Level::Error)]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(2));
    }

    #[test]
    fn line_format_is_nginx_s() {
        let path = temp_path("error.log");
        let log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        log.write(Level::Error, Some(7), format_args!("open() \"{}\" failed", "/x"));
        log.write(Level::Crit, None, format_args!("no connection"));
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(text.ends_with('\n'));
        let (pid, tid) = (std::process::id(), nix::unistd::gettid());
        let (stamp, rest) = lines[0].split_at(19);
        assert_eq!(shape(stamp), "9999/99/99 99:99:99");
        assert_eq!(rest, format!(" [error] {pid}#{tid}: *7 open() \"/x\" failed"));
        assert_eq!(&lines[1][19..], format!(" [crit] {pid}#{tid}: no connection"));
    }

    #[test]
    fn long_lines_are_cut_at_max_line() {
        let path = temp_path("error.log");
        let log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        let long = "é".repeat(MAX_LINE);
        log.write(Level::Error, None, format_args!("{long}"));
        let text = read(&path);
        assert!(text.len() <= MAX_LINE && text.len() > MAX_LINE - 4, "{}", text.len());
        assert!(text.ends_with("é\n"));
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn each_target_filters_by_its_level() {
        let (errors, infos) = (temp_path("errors.log"), temp_path("infos.log"));
        let log =
            ErrorLog::open(&[(Target::File(errors.clone()), Level::Error), (Target::File(infos.clone()), Level::Info)])
                .unwrap();
        assert_eq!(log.level(), Level::Info);
        for level in Level::ALL {
            log.write(level, None, format_args!("at {level}"));
        }
        let names = |path: &Path| -> Vec<String> {
            read(path).lines().map(|l| l.split(" at ").nth(1).unwrap().to_string()).collect()
        };
        assert_eq!(names(&errors), ["emerg", "alert", "crit", "error"]);
        assert_eq!(names(&infos), ["emerg", "alert", "crit", "error", "warn", "notice", "info"]);
    }

    #[test]
    fn concurrent_writers_produce_whole_lines() {
        const THREADS: usize = 4;
        const LINES: usize = 500;
        let path = temp_path("error.log");
        let log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let log = &log;
                s.spawn(move || {
                    for i in 0..LINES {
                        // Varying lengths make torn writes show up as bad lines.
                        let pad = "x".repeat((i * 37 + t * 11) % 300);
                        log.write(Level::Error, None, format_args!("t{t} i{i} {pad} end"));
                    }
                });
            }
        });
        let text = read(&path);
        let mut seen = vec![0usize; THREADS];
        for line in text.lines() {
            let msg = line.split(": ").nth(1).unwrap();
            let mut words = msg.split(' ');
            let t: usize = words.next().unwrap()[1..].parse().unwrap();
            let i: usize = words.next().unwrap()[1..].parse().unwrap();
            let pad = "x".repeat((i * 37 + t * 11) % 300);
            assert_eq!(msg, format!("t{t} i{i} {pad} end"));
            seen[t] += 1;
        }
        assert_eq!(seen, [LINES; THREADS]);
    }

    #[test]
    fn reopen_after_rename_writes_to_the_new_file() {
        let path = temp_path("error.log");
        let rotated = path.with_extension("log.1");
        let log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        log.write(Level::Error, None, format_args!("before"));
        std::fs::rename(&path, &rotated).unwrap();
        log.write(Level::Error, None, format_args!("still old"));
        log.reopen().unwrap();
        log.write(Level::Error, None, format_args!("after"));
        let old = read(&rotated);
        assert!(old.contains("before") && old.contains("still old"), "{old}");
        assert!(!old.contains("after"));
        let new = read(&path);
        assert_eq!(new.lines().count(), 1);
        assert!(new.ends_with(": after\n"), "{new}");
    }

    #[test]
    fn reopen_failure_keeps_the_old_file() {
        let dir = temp_path("d");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log");
        let log = ErrorLog::open(&[(Target::File(path.clone()), Level::Error)]).unwrap();
        let moved = dir.with_extension("moved");
        std::fs::rename(&dir, &moved).unwrap();
        assert!(log.reopen().is_err());
        log.write(Level::Error, None, format_args!("kept"));
        assert!(read(&moved.join("error.log")).ends_with(": kept\n"));
    }

    /// The only test that touches the process-wide log, so tests running in
    /// parallel never see each other's log.
    #[test]
    fn installed_log_gates_and_writes() {
        let path = temp_path("global.log");
        let rotated = path.with_extension("log.1");
        install(ErrorLog::open(&[(Target::File(path.clone()), Level::Warn)]).unwrap());
        assert!(enabled(Level::Warn) && enabled(Level::Emerg));
        assert!(!enabled(Level::Notice));
        let evaluated = AtomicUsize::new(0);
        let count = || evaluated.fetch_add(1, Ordering::Relaxed);
        crate::log_error!(Level::Warn, Some(3), "warned {}", count());
        crate::log_error!(Level::Info, None, "dropped {}", count());
        assert_eq!(evaluated.load(Ordering::Relaxed), 1, "disabled args evaluated");
        std::fs::rename(&path, &rotated).unwrap();
        reopen().unwrap();
        crate::log_error!(Level::Error, None, "after reopen");
        assert!(read(&rotated).ends_with(": *3 warned 0\n"));
        assert!(read(&path).ends_with(": after reopen\n"));
        install(ErrorLog::stderr(Level::Error));
        assert!(!enabled(Level::Warn));
    }
}
