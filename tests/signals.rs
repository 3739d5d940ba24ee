//! End-to-end tests of the process lifecycle: the pid file, `-s`, the
//! signals (QUIT, HUP, USR1), the error log, and `daemon on;`.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::cli::{self, run, PidGuard, Spawned, TempDir};
use common::Server;

const WAIT: Duration = Duration::from_secs(5);

/// One location answering `text`.
fn site(text: &str) -> String {
    site_with(text, "")
}

/// As [`site`], plus `/big`, a response of [`BIG`] bytes.
fn site_big(text: &str) -> String {
    site_with(text, &format!("location /big {{ return 200 \"{}\"; }}", "b".repeat(BIG)))
}

fn site_with(text: &str, extra: &str) -> String {
    format!(
        "http {{\n    keepalive_timeout 60s;\n    server {{\n        listen 127.0.0.1:%%PORT%%;\n        \
         location / {{ return 200 \"{text}\"; }}\n        {extra}\n    }}\n}}\n"
    )
}

/// The size of `/big`: far more than the socket buffers of a client with
/// a small receive buffer hold, so its response stays in flight.
const BIG: usize = 8 << 20;

/// The prelude the harness writes, for a configuration rewritten by hand.
fn full_conf(dir: &Path, port: u16, body: &str) -> String {
    let dir = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\nerror_log {dir}/error.log info;\n\
         pid {dir}/sluice.pid;\nevents {{}}\n\n{}\n",
        body.replace("%%PORT%%", &port.to_string())
    )
}

/// `sluice -p DIR/ -c DIR/sluice.conf -s NAME` for the harness's server.
fn dash_s(s: &Server, name: &str) -> cli::Run {
    let prefix = format!("{}/", s.dir().display());
    let conf = s.dir().join("sluice.conf").display().to_string();
    run(s.dir(), &["-p", &prefix, "-c", &conf, "-s", name])
}

fn body(s: &Server) -> String {
    s.get("/").body_str()
}

#[test]
fn pid_file_appears_once_listening_and_holds_the_pid() {
    let dir = TempDir::new("pid");
    let port = cli::free_port();
    let conf = dir.write("sluice.conf", &full_conf(dir.path(), port, &site("v1")));
    let prefix = dir.prefix();
    let mut s = Spawned::start(dir.path(), &["-p", &prefix, "-c", &conf]);
    let pid_path = dir.path().join("sluice.pid");
    assert!(cli::wait_until(WAIT, || pid_path.exists() || s.exited().is_some()), "no pid file");
    assert!(cli::accepts(port), "the port accepts once the pid file exists");
    // The file may be seen between its creation and its write.
    assert!(cli::wait_until(WAIT, || dir.read("sluice.pid").ends_with('\n')));
    assert_eq!(dir.read("sluice.pid"), format!("{}\n", s.pid()));
}

#[test]
fn error_log_exists_at_start_with_nginx_line_format() {
    let s = Server::start(&site("v1"));
    assert!(s.dir().join("error.log").exists(), "error.log right after start");
    assert!(cli::wait_until(WAIT, || !s.error_log().is_empty()));
    let log = s.error_log();
    let line = log.lines().next().expect("a line");
    // YYYY/MM/DD HH:MM:SS [level] pid#tid: message
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    assert!(line.len() > 21, "{line:?}");
    assert!(digits(0..4) && digits(5..7) && digits(8..10), "date: {line:?}");
    assert!(digits(11..13) && digits(14..16) && digits(17..19), "time: {line:?}");
    assert_eq!((b[4], b[7], b[10], b[13], b[16], b[19]), (b'/', b'/', b' ', b':', b':', b' '));
    let rest = &line[20..];
    let (level, rest) =
        rest.strip_prefix('[').and_then(|r| r.split_once("] ")).unwrap_or_else(|| panic!("level: {line:?}"));
    let levels = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];
    assert!(levels.contains(&level), "{line:?}");
    let (ids, _msg) = rest.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
    let (pid, tid) = ids.split_once('#').unwrap_or_else(|| panic!("pid#tid: {line:?}"));
    assert_eq!(pid, s.pid().to_string(), "{line:?}");
    assert!(!tid.is_empty() && tid.bytes().all(|c| c.is_ascii_digit()), "{line:?}");
}

#[test]
fn dash_s_stop_ends_the_server_and_removes_the_pid_file() {
    let mut s = Server::start(&site("v1"));
    assert!(cli::wait_until(WAIT, || s.dir().join("sluice.pid").exists()));
    let r = dash_s(&s, "stop");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(s.wait_exit(WAIT).is_some(), "still running after -s stop");
    assert!(!s.dir().join("sluice.pid").exists(), "pid file removed");
}

#[test]
fn dash_s_quit_ends_the_server_gracefully() {
    let mut s = Server::start(&site("v1"));
    assert!(cli::wait_until(WAIT, || s.dir().join("sluice.pid").exists()));
    let r = dash_s(&s, "quit");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let status = s.wait_exit(WAIT).expect("still running after -s quit");
    assert!(status.success(), "{status}");
    assert!(!s.dir().join("sluice.pid").exists(), "pid file removed");
    assert!(s.error_log().contains("(SIGQUIT) received"), "{}", s.error_log());
}

#[test]
fn dash_s_reload_switches_configuration() {
    let s = Server::start(&site("v1"));
    assert!(cli::wait_until(WAIT, || s.dir().join("sluice.pid").exists()));
    assert_eq!(body(&s), "v1");
    s.write_file("sluice.conf", full_conf(s.dir(), s.port(), &site("v2")));
    let r = dash_s(&s, "reload");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(cli::wait_until(WAIT, || body(&s) == "v2"), "still {}", body(&s));
}

#[test]
fn dash_s_reopen_reopens_the_error_log() {
    let s = Server::start(&site("v1"));
    assert!(cli::wait_until(WAIT, || s.dir().join("sluice.pid").exists()));
    let log = s.dir().join("error.log");
    std::fs::rename(&log, s.dir().join("error.log.1")).expect("rename");
    let r = dash_s(&s, "reopen");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(cli::wait_until(WAIT, || log.exists()), "no new error.log");
}

#[test]
fn dash_s_without_a_running_server_names_the_pid_file() {
    let dir = TempDir::new("nopid");
    let conf = dir.write("sluice.conf", &full_conf(dir.path(), 1, &site("v1")));
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-p", &prefix, "-c", &conf, "-s", "stop"]);
    assert_eq!(r.code, 1);
    let pid = dir.join("sluice.pid");
    assert!(r.stderr.contains(&format!("open() \"{pid}\" failed (2: No such file or directory)")), "{}", r.stderr);
}

#[test]
fn sigusr1_after_rename_creates_and_writes_a_new_error_log() {
    let s = Server::start(&site("v1"));
    let log = s.dir().join("error.log");
    let moved = s.dir().join("error.log.1");
    std::fs::rename(&log, &moved).expect("rename");
    s.signal("USR1");
    assert!(cli::wait_until(WAIT, || log.exists()), "no new error.log");
    // Something logged now goes to the new file, not the moved one.
    let moved_len = std::fs::metadata(&moved).expect("moved").len();
    s.signal("HUP");
    assert!(
        cli::wait_until(WAIT, || s.error_log().contains("(SIGHUP) received")),
        "new error.log: {:?}",
        s.error_log()
    );
    let moved_text = std::fs::read_to_string(&moved).expect("moved");
    assert!(!moved_text[moved_len as usize..].contains("SIGHUP"), "{moved_text}");
}

#[test]
fn sigquit_closes_idle_keepalive_connections_and_exits() {
    let mut s = Server::start(&site("v1"));
    let mut conn = s.connect();
    conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let resp = conn.read_response().expect("a response");
    assert_eq!((resp.status, resp.body_str()), (200, "v1".to_string()));
    s.signal("QUIT");
    assert!(conn.closed_within(Duration::from_secs(3)), "idle connection kept open");
    assert!(conn.buffered().is_empty(), "nothing more sent");
    let status = s.wait_exit(Duration::from_secs(3)).expect("did not exit");
    assert!(status.success(), "{status}");
}

/// Requests `/big` on `stream` and reads its head (the body is in flight).
fn start_big(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
    let (head, got) = cli::read_head(stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(cli::content_length(&head), BIG);
    (head, got)
}

/// Reads the rest of `/big` and checks every byte arrived.
fn finish_big(stream: &mut std::net::TcpStream, mut got: Vec<u8>) {
    let mut chunk = vec![0u8; 64 * 1024];
    while got.len() < BIG {
        let n = stream.read(&mut chunk).unwrap_or_else(|e| panic!("after {} of {BIG} bytes: {e}", got.len()));
        assert!(n > 0, "closed after {} of {BIG} bytes", got.len());
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(got.len(), BIG, "no bytes past the body");
    assert!(got.iter().all(|&b| b == b'b'), "body intact");
}

#[test]
fn sigquit_lets_an_in_flight_response_complete() {
    let mut s = Server::start(&site_big("v1"));
    let mut stream = cli::connect_small_rcvbuf(s.port());
    let (_, got) = start_big(&mut stream);
    s.signal("QUIT");
    finish_big(&mut stream, got);
    let status = s.wait_exit(WAIT).expect("did not exit after the response");
    assert!(status.success(), "{status}");
}

#[test]
fn sighup_switches_to_the_new_configuration() {
    let mut s = Server::start(&site("v1"));
    assert_eq!(body(&s), "v1");
    let log = s.reload_with(&site("v2"));
    assert!(!log.contains("[emerg]"), "{log}");
    assert_eq!(body(&s), "v2");
}

#[test]
fn sighup_finishes_the_request_in_flight_on_an_old_connection() {
    let s = Server::start(&site_big("v1"));
    let mut stream = cli::connect_small_rcvbuf(s.port());
    let (_, got) = start_big(&mut stream);
    s.write_file("sluice.conf", full_conf(s.dir(), s.port(), &site_big("v2")));
    s.signal("HUP");
    assert!(cli::wait_until(WAIT, || body(&s) == "v2"), "still {}", body(&s));
    finish_big(&mut stream, got);
    // The old worker is draining: the connection is not kept alive.
    let mut one = [0u8; 1];
    stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let after = stream.read(&mut one);
    assert!(
        matches!(after, Ok(0)) || matches!(&after, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "old connection not closed after its response: {after:?}"
    );
}

#[test]
fn sighup_with_a_broken_configuration_keeps_the_old_one() {
    let mut s = Server::start(&site("v1"));
    // The harness prelude is 6 lines; the body starts at line 7.
    let log = s.reload_with("http {\n    bogus_directive on;\n}\n");
    let conf = s.dir().join("sluice.conf").display().to_string();
    let line = log.lines().find(|l| l.contains("[emerg]")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.ends_with(&format!("unknown directive \"bogus_directive\" in {conf}:8")), "{line}");
    assert_eq!(body(&s), "v1");
    assert!(s.wait_exit(Duration::ZERO).is_none(), "still running");
}

#[test]
fn daemon_on_detaches_and_dash_s_stop_ends_it() {
    let dir = TempDir::new("daemon");
    let port = cli::free_port();
    let conf = full_conf(dir.path(), port, &site("daemon")).replace("daemon off;", "daemon on;");
    let conf = dir.write("sluice.conf", &conf);
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-p", &prefix, "-c", &conf]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "the launcher returns at once");
    let pid_path = dir.path().join("sluice.pid");
    assert!(
        cli::wait_until(WAIT, || dir.read("sluice.pid").ends_with('\n')),
        "no pid file; error.log: {}",
        dir.read("error.log")
    );
    let pid: u32 = dir.read("sluice.pid").trim().parse().expect("a pid");
    let _guard = PidGuard(pid);
    assert_ne!(pid, r.pid, "the daemon is another process than the one started");
    assert!(!cli::process_gone(pid), "the daemon runs");
    let mut conn = common::Conn::open(port);
    conn.send(b"GET / HTTP/1.0\r\n\r\n");
    let (resp, _) = common::parse_response(&conn.read_to_end());
    assert_eq!((resp.status, resp.body_str()), (200, "daemon".to_string()));

    let r = run(dir.path(), &["-p", &prefix, "-c", &conf, "-s", "stop"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(cli::wait_until(WAIT, || cli::process_gone(pid)), "daemon still runs");
    assert!(!pid_path.exists(), "pid file removed");
}

#[test]
fn worker_shutdown_timeout_closes_what_a_graceful_stop_still_waits_for() {
    // A response the client does not read holds a graceful stop; with
    // worker_shutdown_timeout the connection is closed when it runs out.
    let mut s = Server::start(&format!("worker_shutdown_timeout 1s;\n{}", site_big("v1")));
    let mut stream = cli::connect_small_rcvbuf(s.port());
    let _ = start_big(&mut stream);
    let began = std::time::Instant::now();
    s.signal("QUIT");
    let status = s.wait_exit(WAIT).expect("did not exit once worker_shutdown_timeout ran out");
    assert!(status.success(), "{status}");
    assert!(began.elapsed() >= Duration::from_millis(900), "exited after {:?}", began.elapsed());
    assert!(s.error_log().contains("worker_shutdown_timeout: closing 1 connection(s)"), "{}", s.error_log());
}
