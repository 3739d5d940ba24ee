//! End-to-end: proxy faults — the upstream closing mid-body, refusing,
//! staying silent; the client aborting mid-stream (no descriptor leak) —
//! and upgraded (WebSocket-style) connections.

mod common;
#[path = "common/origin.rs"]
mod origin;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{show, Server};
use origin::{poll, Origin};

fn start(o: &Origin, loc: &str) -> Server {
    Server::start(&format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://127.0.0.1:{}; {loc} }} }} }}",
        o.port()
    ))
}

fn wait_log(s: &Server, text: &str) {
    assert!(
        poll(Duration::from_secs(3), || s.error_log().contains(text)),
        "no {text:?} in error.log:\n{}",
        s.error_log()
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn upstream_closes_mid_body_content_length() {
    let o = Origin::start(|c| {
        c.read_request();
        c.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    });
    let s = start(&o, "");
    // A keep-alive client: the server must close, not hang or pad.
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let bytes = c.read_to_end();
    let body_at = find(&bytes, b"\r\n\r\n").expect("a response head") + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", show(&bytes));
    assert_eq!(&bytes[body_at..], b"0123456789", "{:?}", show(&bytes));
    wait_log(&s, "upstream prematurely closed connection while reading upstream");
}

#[test]
fn upstream_closes_mid_body_chunked() {
    let o = Origin::start(|c| {
        c.read_request();
        c.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    });
    let s = start(&o, "");
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let bytes = c.read_to_end();
    assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", show(&bytes));
    assert!(find(&bytes, b"hello").is_some(), "{:?}", show(&bytes));
    assert!(!bytes.ends_with(b"0\r\n\r\n"), "a truncated body must not end with the last chunk: {:?}", show(&bytes));
    wait_log(&s, "upstream prematurely closed connection while reading upstream");
}

#[test]
fn upstream_down_is_502() {
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let s = Server::start(&format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://127.0.0.1:{dead}; }} }} }}"
    ));
    let r = s.get("/d");
    assert_eq!(r.status, 502);
    assert!(r.body_str().contains("<title>502 Bad Gateway</title>"));
    wait_log(&s, "connect() failed (111: Connection refused) while connecting to upstream");
    wait_log(&s, &format!("upstream: \"http://127.0.0.1:{dead}/d\""));
}

#[test]
fn silent_upstream_is_504_after_read_timeout() {
    let o = Origin::start(|c| {
        c.read_request();
        c.wait_eof(Duration::from_secs(5));
    });
    let s = start(&o, "proxy_read_timeout 1s;");
    let t = Instant::now();
    let r = s.get("/");
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert!(r.body_str().contains("<title>504 Gateway Time-out</title>"), "{}", r.body_str());
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    wait_log(&s, "upstream timed out (110: Connection timed out) while reading response header from upstream");
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The descriptor count once it is the same three times 50 ms apart (at
/// most 2 s of trying).
fn settled_fd_count(pid: u32) -> usize {
    let mut last = fd_count(pid);
    let mut same = 0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        let now = fd_count(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
        if same == 2 {
            break;
        }
    }
    last
}

#[test]
fn client_abort_mid_stream_closes_upstream_and_leaks_no_fd() {
    let upstream_closed = Arc::new(AtomicBool::new(false));
    let flag = upstream_closed.clone();
    let o = Origin::start(move |c| {
        let Some(req) = c.read_request() else { return };
        if req.head.target == "/warm" {
            c.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            return;
        }
        c.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        loop {
            match c.try_write(&chunk) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
                Err(_) => {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    });
    let s = start(&o, "");
    assert_eq!(s.get("/warm").body_str(), "ok");
    // The server may not have closed its side of the warm-up connection
    // yet: count once the number has held still for a moment.
    let before = settled_fd_count(s.pid());
    {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut got = 0;
        let mut buf = [0u8; 64 * 1024];
        while got < 1 << 20 {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed early");
            got += n;
        }
        // Dropping the socket aborts the client side mid-stream.
    }
    assert!(
        poll(Duration::from_secs(5), || upstream_closed.load(Ordering::SeqCst)),
        "the upstream connection stayed open after the client went away"
    );
    assert!(
        poll(Duration::from_secs(5), || fd_count(s.pid()) == before),
        "fds before {before}, now {}",
        fd_count(s.pid())
    );
}

// ---- upgraded connections ----

const UPGRADE_LOC: &str =
    "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";";

const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

/// Sends the upgrade request and reads the 101 head; returns the socket
/// and any bytes read past the head.
fn upgrade(s: &Server) -> (TcpStream, Vec<u8>) {
    let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = find(&got, b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the 101: {:?}", show(&got));
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    (c, got[end..].to_vec())
}

fn read_n(c: &mut TcpStream, mut have: Vec<u8>, n: usize) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    while have.len() < n {
        let r = c.read(&mut buf).unwrap();
        assert!(r > 0, "closed after {:?}", show(&have));
        have.extend_from_slice(&buf[..r]);
    }
    have
}

fn closes(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn websocket_echo_both_ways_and_client_close_propagates() {
    let origin_saw_eof = Arc::new(AtomicBool::new(false));
    let flag = origin_saw_eof.clone();
    let o = Origin::start(move |c| {
        let Some(_) = c.read_request() else { return };
        c.write(SWITCH);
        loop {
            let got = c.read_some();
            if got.is_empty() {
                flag.store(true, Ordering::SeqCst);
                return;
            }
            let mut echo = b"echo:".to_vec();
            echo.extend_from_slice(&got);
            if !c.write(&echo) {
                return;
            }
        }
    });
    let s = start(&o, UPGRADE_LOC);
    let (mut c, rest) = upgrade(&s);
    let h = o.wait_requests(1)[0].head.clone();
    assert_eq!(h.header("Upgrade"), Some("websocket"), "{}", h.raw);
    assert_eq!(h.header("Connection"), Some("upgrade"), "{}", h.raw);
    assert_eq!(h.version, "HTTP/1.1");
    c.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut c, rest, 9), b"echo:ping");
    c.write_all(b"pong").unwrap();
    assert_eq!(read_n(&mut c, Vec::new(), 9), b"echo:pong");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(poll(Duration::from_secs(3), || origin_saw_eof.load(Ordering::SeqCst)), "origin never saw the close");
    assert!(closes(&mut c), "client side not closed after the origin closed");
}

#[test]
fn websocket_origin_close_propagates_to_client() {
    let o = Origin::start(|c| {
        c.read_request();
        let mut out = SWITCH.to_vec();
        out.extend_from_slice(b"bye");
        c.write(&out);
    });
    let s = start(&o, UPGRADE_LOC);
    let (mut c, rest) = upgrade(&s);
    assert_eq!(read_n(&mut c, rest, 3), b"bye");
    assert!(closes(&mut c), "client side not closed after the origin closed");
}
