//! The master: starts the workers of a cycle, then waits for signals.
//!
//! sluice runs as one process with N worker threads (nginx runs N worker
//! processes); the main thread plays nginx's master. HUP builds a new cycle:
//! if it fails, the error is logged and the old workers keep serving; if it
//! works, new workers start on newly bound SO_REUSEPORT sockets and the old
//! ones stop accepting and drain. QUIT drains and exits, TERM/INT exit at
//! once, USR1 reopens the log files.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_core::log::{self, ErrorLog, Level, Target};
use sluice_core::log_error;
use sluice_core::net::bind_listener;
use sluice_core::process::{self, Signal, SignalWaiter};

use mio::net::TcpListener;

use crate::config::{HttpConfig, Modules};
use crate::cycle::Cycle;
use crate::worker::{Worker, WorkerShared, CMD_QUIT, CMD_STOP};

/// How to start.
#[derive(Debug, Clone)]
pub struct StartOpts {
    /// The main configuration file.
    pub conf_path: PathBuf,
    /// The prefix.
    pub prefix: PathBuf,
    /// `-g` directives.
    pub globals: Option<String>,
    /// `-e`: the error log used until the configuration names one.
    pub error_log: Option<Target>,
    /// The configuration text to use when `conf_path` does not exist.
    pub embedded: Option<String>,
}

/// What a worker is started with, besides its sockets.
#[derive(Clone, Copy)]
struct WorkerLimits {
    max_conns: usize,
    shutdown_timeout: Option<Duration>,
}

struct Generation {
    /// The configuration its workers serve (`None`: no `http` block).
    http: Option<Arc<HttpConfig>>,
    limits: WorkerLimits,
    /// Worker `i` runs on thread `sluice-worker-{i}`.
    workers: Vec<(Arc<WorkerShared>, JoinHandle<()>)>,
}

/// Loads the configuration the way a start does.
pub fn load(modules: &Arc<Modules>, opts: &StartOpts) -> Result<Cycle, sluice_core::conf::ConfError> {
    let embedded = if opts.conf_path.exists() { None } else { opts.embedded.as_deref() };
    Cycle::load(modules, &opts.conf_path, &opts.prefix, opts.globals.as_deref(), embedded)
}

fn open_logs(cycle: &Cycle, opts: &StartOpts) -> std::io::Result<ErrorLog> {
    let targets = if cycle.core.error_log.is_empty() {
        vec![(
            opts.error_log.clone().unwrap_or_else(|| Target::File(cycle.prefix.join("logs/error.log"))),
            Level::Error,
        )]
    } else {
        cycle.core.error_log.clone()
    };
    for (t, _) in &targets {
        if let Target::File(p) = t {
            if let Some(dir) = p.parent() {
                if dir.starts_with(&cycle.prefix) {
                    let _ = std::fs::create_dir_all(dir);
                }
            }
        }
    }
    ErrorLog::open(&targets)
}

/// A worker's own listening sockets, one per listen site (SO_REUSEPORT).
fn bind_listeners(http: &HttpConfig) -> Result<Vec<TcpListener>, String> {
    http.listens
        .iter()
        .map(|site| {
            bind_listener(site.addr, &site.opts)
                .map_err(|e| format!("bind() to {} failed ({})", site.addr, log::os_error(&e)))
        })
        .collect()
}

/// Starts worker `i` on its own thread with the sockets `ls`.
fn spawn_worker(
    i: usize,
    http: &Arc<HttpConfig>,
    ls: Vec<TcpListener>,
    limits: WorkerLimits,
) -> Result<(Arc<WorkerShared>, JoinHandle<()>), String> {
    // The worker is built on its own thread: its connections are not Send.
    let (tx, rx) = std::sync::mpsc::channel();
    let http = http.clone();
    let handle = std::thread::Builder::new()
        .name(format!("sluice-worker-{i}"))
        .spawn(move || match Worker::new(http, ls, limits.max_conns, limits.shutdown_timeout) {
            Ok((w, shared)) => {
                let _ = tx.send(Ok(shared));
                w.run();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| format!("could not start a worker thread: {e}"))?;
    let shared = rx.recv().map_err(|_| format!("worker {i} did not start"))?.map_err(|e| format!("worker {i}: {e}"))?;
    Ok((shared, handle))
}

fn start_generation(cycle: &Cycle) -> Result<Generation, String> {
    let limits = WorkerLimits {
        max_conns: cycle.core.worker_connections.unwrap_or(512) as usize,
        shutdown_timeout: cycle.core.worker_shutdown_timeout,
    };
    let Some(http) = cycle.http.clone() else {
        return Ok(Generation { http: None, limits, workers: Vec::new() });
    };
    // Every worker's sockets first: a port that cannot be bound fails the
    // whole generation before any of it serves.
    let bound = (0..cycle.workers()).map(|_| bind_listeners(&http)).collect::<Result<Vec<_>, _>>()?;
    let mut workers = Vec::new();
    for (i, ls) in bound.into_iter().enumerate() {
        workers.push(spawn_worker(i, &http, ls, limits)?);
    }
    Ok(Generation { http: Some(http), limits, workers })
}

/// Starts a new worker in place of any of the generation's workers whose
/// thread has ended — after a panic (a module's bug), or an event loop
/// that gave up — as nginx's master starts a new worker process in place
/// of one that exited. The old worker's connections are gone with it; the
/// others' are untouched. A worker that cannot be started now (its port
/// taken meanwhile) is tried again on the next call.
fn replace_exited(gen: &mut Generation) {
    let Some(http) = gen.http.clone() else {
        return;
    };
    for i in 0..gen.workers.len() {
        if !gen.workers[i].1.is_finished() {
            continue;
        }
        let started = bind_listeners(&http).and_then(|ls| spawn_worker(i, &http, ls, gen.limits));
        match started {
            Ok(new) => {
                let (_, old) = std::mem::replace(&mut gen.workers[i], new);
                match old.join() {
                    // The panic hook has logged what and where.
                    Err(_) => log_error!(Level::Alert, None, "worker {} exited on a panic", i),
                    Ok(()) => log_error!(Level::Alert, None, "worker {} exited unexpectedly", i),
                }
                log_error!(Level::Notice, None, "start worker {}", i);
            }
            Err(e) => log_error!(Level::Alert, None, "could not start a new worker {}: {}", i, e),
        }
    }
}

/// Logs a panic, of a worker thread or any other, as an `[alert]` line of
/// the error log (with the thread, the place in the source and the
/// message) instead of the standard library's text on standard error
/// (which the log file may or may not be). `RUST_BACKTRACE` set adds the
/// standard report, backtrace included, on standard error.
fn log_panics() {
    let standard = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let place =
            info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        log_error!(
            Level::Alert,
            None,
            "thread '{}' panicked{}: {}",
            thread.name().unwrap_or("unnamed"),
            place,
            info.payload_as_str().unwrap_or("(no message)")
        );
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            standard(info);
        }
    }));
}

fn stop_generation(gen: Generation, cmd: u8) -> JoinHandle<()> {
    for (s, _) in &gen.workers {
        s.command(cmd);
    }
    std::thread::spawn(move || {
        let n = gen.workers.len();
        for (_, h) in gen.workers {
            let _ = h.join();
        }
        // nginx logs each old worker's exit; these are threads of one
        // process, so one line says the old generation is gone.
        if n > 0 {
            log_error!(Level::Notice, None, "{} worker thread(s) of the previous configuration exited with code 0", n);
        }
    })
}

fn switch_user(user: &str, group: Option<&str>) -> Result<(), String> {
    use nix::unistd::{setgid, setuid, Group, User};
    let u = User::from_name(user)
        .map_err(|e| format!("getpwnam(\"{user}\") failed ({e})"))?
        .ok_or_else(|| format!("getpwnam(\"{user}\") failed"))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("getgrnam(\"{g}\") failed ({e})"))?
                .ok_or_else(|| format!("getgrnam(\"{g}\") failed"))?
                .gid
        }
        None => u.gid,
    };
    setgid(gid).map_err(|e| format!("setgid({gid}) failed ({e})"))?;
    setuid(u.uid).map_err(|e| format!("setuid({}) failed ({e})", u.uid))?;
    Ok(())
}

/// Runs the server until QUIT, TERM or INT. Returns the exit code.
pub fn run(modules: Arc<Modules>, opts: StartOpts) -> i32 {
    log_panics();
    let waiter = match SignalWaiter::install() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("sluice: [emerg] could not set up signals: {e}");
            return 1;
        }
    };
    let cycle = match load(&modules, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: [emerg] {e}");
            return 1;
        }
    };
    match open_logs(&cycle, &opts) {
        Ok(l) => log::install(l),
        Err(e) => {
            eprintln!("sluice: [emerg] could not open error log file: {}", log::os_error(&e));
            return 1;
        }
    }
    if cycle.core.daemon.unwrap_or(true) {
        if let Err(e) = process::daemonize() {
            eprintln!("sluice: [emerg] daemon() failed ({e})");
            return 1;
        }
    }
    if let Some(n) = cycle.core.worker_rlimit_nofile {
        use nix::sys::resource::{setrlimit, Resource};
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, n, n) {
            log_error!(Level::Alert, None, "setrlimit(RLIMIT_NOFILE, {}) failed ({})", n, log::os_error(&e.into()));
        }
    }
    let mut current = match start_generation(&cycle) {
        Ok(g) => g,
        Err(e) => {
            log_error!(Level::Emerg, None, "{}", e);
            eprintln!("sluice: [emerg] {e}");
            return 1;
        }
    };
    if let Some((user, group)) = &cycle.core.user {
        if nix::unistd::geteuid().is_root() {
            if let Err(e) = switch_user(user, group.as_deref()) {
                log_error!(Level::Emerg, None, "{}", e);
                eprintln!("sluice: [emerg] {e}");
                let _ = stop_generation(current, CMD_STOP).join();
                return 1;
            }
        }
    }
    let pid_path = cycle.pid_path();
    if let Err(e) = process::write_pid_file(&pid_path) {
        log_error!(Level::Emerg, None, "open() \"{}\" failed ({})", pid_path.display(), log::os_error(&e));
        let _ = stop_generation(current, CMD_STOP).join();
        return 1;
    }
    log_error!(Level::Notice, None, "sluice/{} started, {} worker(s)", env!("CARGO_PKG_VERSION"), cycle.workers());
    let mut draining: Vec<JoinHandle<()>> = Vec::new();
    let mut current_http = cycle.http.clone();
    let mut pid_path = pid_path;
    loop {
        let signal = waiter.wait_timeout(Duration::from_secs(1));
        replace_exited(&mut current);
        let Some(sig) = signal else {
            draining.retain(|h| !h.is_finished());
            continue;
        };
        match sig {
            Signal::Reload => {
                log_error!(Level::Notice, None, "signal 1 (SIGHUP) received, reconfiguring");
                match load(&modules, &opts).and_then(|c| {
                    Ok((
                        open_logs(&c, &opts).map_err(|e| {
                            sluice_core::conf::ConfError::new(format!(
                                "could not open error log file: {}",
                                log::os_error(&e)
                            ))
                        })?,
                        c,
                    ))
                }) {
                    Err(e) => log_error!(Level::Emerg, None, "{}", e),
                    Ok((log_file, next)) => match start_generation(&next) {
                        Err(e) => log_error!(Level::Emerg, None, "{}", e),
                        Ok(gen) => {
                            log::install(log_file);
                            current_http = next.http.clone();
                            draining.push(stop_generation(std::mem::replace(&mut current, gen), CMD_QUIT));
                            let new_pid = next.pid_path();
                            if new_pid != pid_path {
                                process::remove_pid_file(&pid_path);
                                let _ = process::write_pid_file(&new_pid);
                                pid_path = new_pid;
                            }
                            log_error!(Level::Notice, None, "reconfigured, {} worker(s)", next.workers());
                        }
                    },
                }
            }
            Signal::Reopen => {
                log_error!(Level::Notice, None, "signal 10 (SIGUSR1) received, reopening logs");
                if let Err(e) = log::reopen() {
                    log_error!(Level::Alert, None, "reopen failed ({})", log::os_error(&e));
                }
                if let Some(http) = &current_http {
                    if let Err(e) = http.reopen_files() {
                        log_error!(Level::Alert, None, "reopen failed ({})", log::os_error(&e));
                    }
                }
            }
            Signal::Quit => {
                log_error!(Level::Notice, None, "signal 3 (SIGQUIT) received, shutting down gracefully");
                draining.push(stop_generation(current, CMD_QUIT));
                for h in draining {
                    let _ = h.join();
                }
                break;
            }
            Signal::Stop => {
                log_error!(Level::Notice, None, "signal 15 (SIGTERM) received, exiting");
                for (s, _) in &current.workers {
                    s.command(CMD_STOP);
                }
                let _ = stop_generation(current, CMD_STOP).join();
                break;
            }
        }
    }
    process::remove_pid_file(&pid_path);
    log_error!(Level::Notice, None, "exit");
    0
}
