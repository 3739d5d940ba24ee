//! End-to-end: running out of file descriptors (EMFILE on accept) neither
//! crashes a worker nor makes it spin, and it serves again once
//! descriptors are free.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which ends with ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

#[test]
fn emfile_on_accept_pauses_instead_of_spinning_and_recovers() {
    let s = Server::start(
        "worker_rlimit_nofile 48;
        http { access_log off; server { listen 127.0.0.1:%%PORT%%; location / { return 200 \"ok\"; } } }",
    );
    // Hold more connections than the process has descriptors for: the
    // kernel completes the handshakes; the worker runs out of descriptors.
    let held: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(("127.0.0.1", s.port())).expect("connect")).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.error_log().contains("accept4() failed (24: Too many open files)") {
        assert!(Instant::now() < deadline, "no EMFILE logged: {}", s.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // While stuck, the worker waits between attempts rather than looping.
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(s.pid()) - before;
    assert!(used < 30, "the worker spun on EMFILE: {used} ticks of CPU in one second");
    // Free the descriptors: the server accepts and answers again (a
    // connection attempt may still meet the queue of closed ones; retry).
    // Generous bound: on a loaded machine the worker's half-second pauses
    // and the closing of the held connections take a while.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = try_get(s.port()) {
            assert!(body.starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&body));
            assert!(body.ends_with(b"\r\n\r\nok"));
            break;
        }
        assert!(Instant::now() < deadline, "no answer after the descriptors were freed: {}", s.error_log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `GET /` on a new connection; `None` when connecting or reading fails.
fn try_get(port: u16) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = Vec::new();
    c.read_to_end(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}
