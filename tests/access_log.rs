//! End-to-end: `access_log` buffering — `buffer=` holds lines per worker,
//! `flush=` writes them once they are that old, a full buffer is written
//! when the next line would not fit, and a worker that ends writes what it
//! holds.

mod common;

use std::time::{Duration, Instant};

use common::Server;

fn log_of(s: &Server) -> String {
    std::fs::read_to_string(s.dir().join("access.log")).unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn conf(params: &str) -> String {
    format!(
        "http {{ log_format short '$request_uri $status'; access_log %%DIR%%/access.log short {params};
            server {{ listen 127.0.0.1:%%PORT%%; location / {{ return 200 \"ok\"; }} }} }}"
    )
}

#[test]
fn buffered_lines_are_written_once_flush_time_passes() {
    let s = Server::start(&conf("buffer=4k flush=2s"));
    let first = Instant::now();
    for i in 0..3 {
        assert_eq!(s.get(&format!("/{i}")).status, 200);
    }
    // Held in the worker's buffer until two seconds after the first line
    // (checked only while that is surely not yet the case).
    let log = log_of(&s);
    if first.elapsed() < Duration::from_millis(1500) {
        assert_eq!(log, "", "lines are buffered");
    }
    wait_for("buffered lines never written", Duration::from_secs(5), || log_of(&s) == "/0 200\n/1 200\n/2 200\n");
}

#[test]
fn a_full_buffer_is_written_when_the_next_line_does_not_fit() {
    let s = Server::start(&conf("buffer=100"));
    // Lines of 11 bytes ("/00000 200\n"): nine fill 99 of the 100 bytes,
    // the tenth does not fit, so the nine are written.
    for i in 0..10 {
        assert_eq!(s.get(&format!("/{i:05}")).status, 200);
    }
    let log = log_of(&s);
    assert_eq!(log.lines().count(), 9, "the nine lines that filled the buffer: {log:?}");
    assert!(log.starts_with("/00000 200\n"));
}

#[test]
fn a_worker_that_quits_writes_what_it_holds() {
    let mut s = Server::start(&conf("buffer=64k"));
    assert_eq!(s.get("/before-quit").status, 200);
    assert_eq!(log_of(&s), "");
    s.signal("QUIT");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some(), "server exits on QUIT");
    assert_eq!(log_of(&s), "/before-quit 200\n");
}

#[test]
fn gzip_writes_members_that_decompress_to_the_lines() {
    let mut s = Server::start(&conf("gzip=5 buffer=100"));
    for i in 0..12 {
        assert_eq!(s.get(&format!("/{i:05}")).status, 200);
    }
    s.signal("QUIT");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some(), "server exits on QUIT");
    let raw = std::fs::read(s.dir().join("access.log")).expect("log");
    assert_eq!(&raw[..2], b"\x1f\x8b", "a gzip stream");
    let out = std::process::Command::new("gzip").args(["-dc"]).arg(s.dir().join("access.log")).output().expect("gzip");
    assert!(out.status.success());
    let expected: String = (0..12).map(|i| format!("/{i:05} 200\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "two members (nine lines, then three) read whole");
}

#[test]
fn bad_buffer_parameters_are_refused() {
    for (params, msg) in [
        ("buffer=0", "invalid buffer size \"0\""),
        ("flush=x", "invalid flush time \"x\""),
        ("gzip=0", "invalid compression level \"0\""),
        ("gzip=10", "invalid compression level \"10\""),
    ] {
        let err = Server::try_start(&conf(params)).expect_err(params);
        assert!(err.contains(msg), "{params}: {err}");
    }
}

#[test]
fn a_path_with_variables_names_the_file_per_request() {
    let s = Server::start(
        "http { log_format short '$uri $status';
            server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/www;
                location / { access_log %%DIR%%/by_$arg_who.log short; return 200 ok; }
                location /gone { root %%DIR%%/missing; access_log %%DIR%%/gone_$arg_who.log short; return 200 ok; }
                location /cached { open_log_file_cache max=2 min_uses=2; access_log %%DIR%%/c/$arg_who.log short; return 200 ok; } } }",
    );
    s.write_file("www/index.html", "x");
    std::fs::create_dir_all(s.dir().join("c")).unwrap();
    for who in ["a", "b", "a"] {
        assert_eq!(s.get(&format!("/x?who={who}")).status, 200);
    }
    let read = |name: &str| std::fs::read_to_string(s.dir().join(name)).unwrap_or_default();
    assert_eq!(read("by_a.log"), "/x 200\n/x 200\n");
    assert_eq!(read("by_b.log"), "/x 200\n");
    // No root directory, no log (as nginx), and the error log says why.
    assert_eq!(s.get("/gone?who=a").status, 200);
    assert!(!s.dir().join("gone_a.log").exists());
    assert!(s.error_log().contains("existence failed"), "{}", s.error_log());
    // Kept open once used twice: lines go on to the file after it was
    // moved away, until `valid` (60s) has it checked.
    for _ in 0..2 {
        s.get("/cached?who=k");
    }
    std::fs::rename(s.dir().join("c"), s.dir().join("c_moved")).unwrap();
    s.get("/cached?who=k");
    // Used once only: not kept, so with the directory gone it cannot be
    // opened (logged at crit).
    s.get("/cached?who=once");
    assert_eq!(read("c_moved/k.log"), "/cached 200\n/cached 200\n/cached 200\n");
    assert!(!s.dir().join("c_moved/once.log").exists());
    assert!(s.error_log().contains("[crit]") && s.error_log().contains("once.log\" failed"), "{}", s.error_log());
}

#[test]
fn a_buffered_log_cannot_have_variables_in_its_path() {
    let e = Server::try_start(
        "http { server { listen 127.0.0.1:%%PORT%%; access_log %%DIR%%/$host.log combined buffer=4k; } }",
    )
    .expect_err("refused");
    assert!(e.contains("buffered logs cannot have variables in name"), "{e}");
}
