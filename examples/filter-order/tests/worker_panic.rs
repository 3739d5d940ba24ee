//! End-to-end: a module that panics (`panic_demo`) ends its worker, and
//! sluice starts a new one in its place, as nginx's master replaces a
//! crashed worker process.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{parse_response, Server};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-filter-order");

#[test]
fn a_panicking_module_costs_one_worker_which_is_replaced() {
    let s = Server::start_with_bin(
        BIN,
        "http { server { listen 127.0.0.1:%%PORT%%;
            location /boom { panic_demo; }
            location / { return 200 \"ok\\n\"; } } }",
    );
    let pid = s.pid();
    assert_eq!(s.get("/").body_str(), "ok\n");

    // The request whose handler panics gets no response: its worker, and
    // with it the connection, is gone.
    let mut c = s.connect();
    c.send(b"GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(c.closed_within(Duration::from_secs(5)), "the connection outlived its worker");
    assert!(
        c.buffered().is_empty(),
        "a response from a worker that panicked: {:?}",
        String::from_utf8_lossy(c.buffered())
    );

    // A new worker serves within a few seconds (the master looks once a
    // second), in the same process.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = std::net::TcpStream::connect(("127.0.0.1", s.port())).ok().map(|_| {
            let (r, _) = parse_response(&s.raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
            r
        });
        if answer.as_ref().is_some_and(|r| r.status == 200 && r.body == b"ok\n") {
            break;
        }
        assert!(Instant::now() < deadline, "no worker answered again; error.log:\n{}", s.error_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.pid(), pid);

    let log = s.error_log();
    let panicked = log
        .lines()
        .find(|l| l.contains("[alert]") && l.contains("thread 'sluice-worker-0' panicked at "))
        .unwrap_or_else(|| panic!("no alert line for the panic:\n{log}"));
    assert!(panicked.contains("panic_demo.rs:"), "{panicked}");
    assert!(panicked.ends_with(": panic_demo was asked for /boom"), "{panicked}");
    assert!(log.contains("[alert]") && log.contains("worker 0 exited on a panic"), "{log}");
    assert!(log.contains("[notice]") && log.contains("start worker 0"), "{log}");
}
