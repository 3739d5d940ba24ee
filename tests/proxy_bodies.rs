//! End-to-end: request bodies through the proxy (buffered and streamed,
//! Content-Length and chunked, 1 GiB uploads) and bounded memory while a
//! fast origin feeds a slow client.

mod common;
#[path = "common/origin.rs"]
mod origin;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{parse_response, Server};
use origin::{fill_stream, poll, Checksum, Origin};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn start(o: &Origin, loc: &str) -> Server {
    Server::start(&format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; client_body_buffer_size 8k;
            location / {{ proxy_pass http://127.0.0.1:{}; {loc} }} }} }}",
        o.port()
    ))
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn chunked(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in b.chunks(3000) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn post(s: &Server, head_extra: &str, payload: &[u8]) -> u16 {
    let mut req = format!("POST /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{head_extra}\r\n").into_bytes();
    req.extend_from_slice(payload);
    parse_response(&s.raw(&req)).0.status
}

#[test]
fn buffered_content_length_body() {
    let o = Origin::fixed(OK);
    let s = start(&o, "");
    let b = body(100_000);
    assert_eq!(post(&s, "Content-Length: 100000\r\n", &b), 200);
    let r = &o.wait_requests(1)[0];
    assert_eq!(r.head.headers_all("Content-Length"), ["100000"], "{}", r.head.raw);
    assert!(r.body == b, "body differs ({} bytes)", r.body.len());
}

#[test]
fn buffered_chunked_body_gets_content_length() {
    let o = Origin::fixed(OK);
    let s = start(&o, "");
    let b = body(50_000);
    assert_eq!(post(&s, "Transfer-Encoding: chunked\r\n", &chunked(&b)), 200);
    let r = &o.wait_requests(1)[0];
    assert_eq!(r.head.headers_all("Content-Length"), ["50000"], "{}", r.head.raw);
    assert_eq!(r.head.header("Transfer-Encoding"), None);
    assert!(r.body == b);
}

#[test]
fn unbuffered_content_length_body_streams() {
    let o = Origin::fixed(OK);
    let s = start(&o, "proxy_request_buffering off;");
    let mut c = s.connect();
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 10\r\n\r\nhello");
    // Streaming: the upstream is connected before the body is complete.
    assert!(poll(Duration::from_secs(3), || o.accepted() == 1), "no upstream connection before the body ended");
    c.send(b"world");
    assert_eq!(c.read_response().map(|r| r.status), Some(200));
    let r = &o.wait_requests(1)[0];
    assert_eq!(r.head.headers_all("Content-Length"), ["10"], "{}", r.head.raw);
    assert_eq!(r.body, b"helloworld");
}

#[test]
fn unbuffered_chunked_body_stays_chunked_with_http11() {
    let o = Origin::fixed(OK);
    let s = start(&o, "proxy_request_buffering off; proxy_http_version 1.1;");
    let b = body(20_000);
    assert_eq!(post(&s, "Transfer-Encoding: chunked\r\n", &chunked(&b)), 200);
    let r = &o.wait_requests(1)[0];
    assert_eq!(r.head.header("Transfer-Encoding"), Some("chunked"), "{}", r.head.raw);
    assert_eq!(r.head.header("Content-Length"), None);
    assert!(r.body == b);
}

#[test]
fn client_max_body_size_413_before_proxying() {
    let o = Origin::fixed(OK);
    let s = start(&o, "client_max_body_size 10;");
    assert_eq!(post(&s, "Content-Length: 100\r\n", &[b'x'; 100]), 413);
    assert_eq!(o.accepted(), 0);
}

// ---- 1 GiB uploads ----

const GIB: u64 = 1 << 30;
const BLOCK: usize = 1 << 20;

/// An origin that checksums the body as it arrives and answers 200.
fn checksum_origin(sum: Arc<Mutex<Option<(u64, u64)>>>) -> Origin {
    Origin::start(move |c| {
        let Some(head) = c.read_head() else { return };
        let mut ck = Checksum::default();
        let complete = c.read_body(&head, |b| ck.update(b));
        let framing = head.header("Transfer-Encoding").unwrap_or("").to_string();
        c.record(head, Vec::new());
        if complete {
            *sum.lock().unwrap() = Some(ck.value());
            c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-TE: {framing}\r\n\r\nok").as_bytes());
        }
    })
}

/// Uploads 1 GiB of the deterministic stream and returns the response
/// status and the (length, checksum) the test computed.
///
/// The issue asks for sha256; tests are std only, so the byte count plus a
/// position-dependent 64-bit checksum of a pseudo-random stream stands in.
fn upload_gib(s: &Server) -> (u16, (u64, u64)) {
    let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(
        format!("POST /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: {GIB}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut ck = Checksum::default();
    let mut block = vec![0u8; BLOCK];
    let mut off = 0;
    while off < GIB {
        fill_stream(off, &mut block);
        ck.update(&block);
        c.write_all(&block).expect("upload write");
        off += BLOCK as u64;
    }
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    (parse_response(&resp).0.status, ck.value())
}

fn gib_upload(loc: &str) {
    let sum = Arc::new(Mutex::new(None));
    let o = checksum_origin(sum.clone());
    let s = Server::start(&format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; client_max_body_size 0;
            location / {{ proxy_pass http://127.0.0.1:{}; {loc} }} }} }}",
        o.port()
    ));
    let (status, expect) = upload_gib(&s);
    assert_eq!(status, 200);
    assert_eq!(*sum.lock().unwrap(), Some(expect));
    let r = &o.wait_requests(1)[0];
    assert_eq!(r.head.headers_all("Content-Length"), [GIB.to_string()], "{}", r.head.raw);
}

#[test]
fn gib_upload_buffered() {
    gib_upload("");
}

#[test]
fn gib_upload_streamed() {
    gib_upload("proxy_request_buffering off;");
}

// ---- bounded memory with a slow client ----

const BIG: u64 = 200 << 20;

fn vm_rss_kib(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = st.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An origin that sends `BIG` bytes of the deterministic stream as fast as
/// the socket takes them, and counts what it has written.
fn fast_origin(written: Arc<Mutex<u64>>) -> Origin {
    Origin::start(move |c| {
        let Some(req) = c.read_request() else { return };
        if req.head.target == "/warm" {
            c.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            return;
        }
        c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n").as_bytes());
        let mut block = vec![0u8; BLOCK];
        let mut off = 0;
        while off < BIG {
            fill_stream(off, &mut block);
            if !c.write(&block) {
                return;
            }
            off += BLOCK as u64;
            *written.lock().unwrap() = off;
        }
    })
}

/// Reads the response slowly at first (64 KiB, then waits until the origin
/// is blocked by back-pressure), checks sluice's RSS growth against
/// `limit_kib`, then reads the rest, sampling RSS, and checks every byte.
fn slow_client(loc: &str, limit_kib: u64) -> Server {
    let written = Arc::new(Mutex::new(0));
    let o = fast_origin(written.clone());
    let s = start(&o, loc);
    assert_eq!(s.get("/warm").body_str(), "ok");
    let base = vm_rss_kib(s.pid());

    let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    while got.len() < 64 * 1024 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    // Wait until the origin stops making progress: back-pressure reached it.
    let mut last = u64::MAX;
    let stalled = poll(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(150));
        let now = *written.lock().unwrap();
        let same = now == last;
        last = now;
        same
    });
    let held = *written.lock().unwrap();
    assert!(stalled && held < BIG, "origin never stalled: wrote {held} of {BIG} while the client read 64 KiB");
    let mut peak = vm_rss_kib(s.pid());

    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let mut ck = Checksum::default();
    ck.update(&got[head_end..]);
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        ck.update(&buf[..n]);
        if ck.len % (16 << 20) < n as u64 {
            peak = peak.max(vm_rss_kib(s.pid()));
        }
    }
    let mut expect = Checksum::default();
    let mut block = vec![0u8; BLOCK];
    for off in (0..BIG).step_by(BLOCK) {
        fill_stream(off, &mut block);
        expect.update(&block);
    }
    assert_eq!(ck.value(), expect.value(), "client did not get every byte");
    assert!(peak <= base + limit_kib, "RSS grew from {base} KiB to {peak} KiB (limit +{limit_kib} KiB)");
    s
}

#[test]
fn slow_client_unbuffered_bounded_memory() {
    // nginx, too, rejects `proxy_buffer_size 16k` alone with the default
    // `proxy_buffers 8 4k` (busy buffers 32k > 7 * 4k), so widen the buffers.
    slow_client("proxy_buffering off; proxy_buffer_size 16k; proxy_buffers 8 16k;", 4096);
}

#[test]
fn slow_client_buffered_no_temp_file_bounded_memory() {
    slow_client("proxy_buffering on; proxy_max_temp_file_size 0;", 4096);
}

/// Memory, then the temp file (written 4 KiB at a time: tens of thousands
/// of writes), then memory again once the file is full: every byte arrives
/// in order, and a large backlog in the file costs no memory.
#[test]
fn slow_client_buffered_temp_file_bounded_memory() {
    let s = slow_client(
        "proxy_buffering on; proxy_buffers 8 16k; proxy_temp_file_write_size 4k; \
         proxy_max_temp_file_size 150m;",
        2048,
    );
    let log = s.error_log();
    assert!(log.contains("[warn]") && log.contains("an upstream response is buffered to a temporary file "), "{log}");
}
