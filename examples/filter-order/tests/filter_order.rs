//! End-to-end tests of the example server binary `sluice-filter-order`:
//! sluice's modules plus `tag_filters` and `stream_demo`, started on
//! loopback with sluice's own test harness.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::Server;
use sluice_example_filter_order::stream_demo::demo_chunk;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-filter-order");

/// What the three filters put before every piece when on: C ran first (its
/// marker sits next to the payload), then B, then A (outermost).
const TAGS: &[u8] = b"[A][B][C]";

fn start(locations: &str) -> Server {
    Server::start_with_bin(BIN, &format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {locations} }} }}"))
}

/// Splits a raw response into its head (without the blank line) and body.
fn split(raw: &[u8]) -> (String, &[u8]) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no head: {}", common::show(raw)));
    (String::from_utf8_lossy(&raw[..end]).into_owned(), &raw[end + 4..])
}

fn get(s: &Server, path: &str, version: &str) -> (String, Vec<u8>) {
    let raw = s.raw(format!("GET {path} {version}\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes());
    let (head, body) = split(&raw);
    (head, body.to_vec())
}

/// Piece `k` of `size` bytes as the client sees it: tagged or not.
fn piece(k: u64, size: usize, tagged: bool) -> Vec<u8> {
    let mut v = if tagged { TAGS.to_vec() } else { Vec::new() };
    v.extend_from_slice(&demo_chunk(k, size));
    v
}

/// The exact chunked body of `n` pieces: size line, piece, CRLF each, then
/// the last chunk.
fn chunked(n: u64, size: usize, tagged: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for k in 0..n {
        let p = piece(k, size, tagged);
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(&p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn assert_chunked_head(head: &str) {
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
}

/// Panics at the first differing byte, showing a little context (bodies
/// here may be megabytes: `assert_eq!` would print all of them).
fn assert_same_bytes(got: &[u8], want: &[u8]) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let from = i.saturating_sub(32);
        panic!(
            "bodies differ at byte {i}:\n got  {:?}\n want {:?}",
            common::show(&got[from..(i + 32).min(got.len())]),
            common::show(&want[from..(i + 32).min(want.len())])
        );
    }
    assert_eq!(got.len(), want.len(), "same prefix, different lengths");
}

#[test]
fn filters_run_c_b_a_and_each_chunk_is_framed_exactly() {
    let s = start("location /on { tag_filters on; stream_demo 3 16; }");
    let (head, body) = get(&s, "/on", "HTTP/1.1");
    assert_chunked_head(&head);
    // Each piece gains 9 bytes of markers: 16 + 9 = 25 = 0x19.
    let mut want = Vec::new();
    for k in 0..3 {
        want.extend_from_slice(b"19\r\n[A][B][C]");
        want.extend_from_slice(&demo_chunk(k, 16));
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(common::show(&body), common::show(&want));
}

#[test]
fn off_and_default_pass_the_payload_untouched() {
    let s = start(
        "location /off { tag_filters off; stream_demo 3 16; } \
         location /default { stream_demo 2 100; }",
    );
    let (head, body) = get(&s, "/off", "HTTP/1.1");
    assert_chunked_head(&head);
    let mut want = Vec::new();
    for k in 0..3 {
        want.extend_from_slice(b"10\r\n");
        want.extend_from_slice(&demo_chunk(k, 16));
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(common::show(&body), common::show(&want));

    let (head, body) = get(&s, "/default", "HTTP/1.1");
    assert_chunked_head(&head);
    assert_eq!(common::show(&body), common::show(&chunked(2, 100, false)));
}

#[test]
fn tag_filters_is_inherited_and_can_be_turned_off_below() {
    let s = start(
        "tag_filters on; \
         location /inherit { stream_demo 2 5; } \
         location /outer { tag_filters off; location /outer/inner { stream_demo 1 5; } }",
    );
    let (_, body) = get(&s, "/inherit", "HTTP/1.1");
    assert_eq!(common::show(&body), common::show(&chunked(2, 5, true)));
    let (_, body) = get(&s, "/outer/inner", "HTTP/1.1");
    assert_eq!(common::show(&body), common::show(&chunked(1, 5, false)));
}

#[test]
fn zero_chunks_is_an_empty_chunked_body() {
    let s = start("location /empty { tag_filters on; stream_demo 0 16; }");
    let (head, body) = get(&s, "/empty", "HTTP/1.1");
    assert_chunked_head(&head);
    assert_eq!(common::show(&body), common::show(b"0\r\n\r\n"));
}

#[test]
fn http10_gets_the_tagged_payload_unframed_and_a_close() {
    let s = start("location /on { tag_filters on; stream_demo 2 16; }");
    let (head, body) = get(&s, "/on", "HTTP/1.0");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let want = [piece(0, 16, true), piece(1, 16, true)].concat();
    assert_eq!(common::show(&body), common::show(&want));
}

#[test]
fn head_gets_no_body_and_post_gets_405() {
    let s = start("location /on { tag_filters on; stream_demo 2 16; }");
    let raw = s.raw(b"HEAD /on HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let (head, body) = split(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.is_empty(), "{}", common::show(body));

    let raw = s.raw(b"POST /on HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    let (head, _) = split(&raw);
    assert!(head.starts_with("HTTP/1.1 405 Not Allowed\r\n"), "{head}");
}

#[test]
fn bad_stream_demo_arguments_and_places_are_rejected() {
    let conf = |loc: &str| format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {loc} }} }}");
    let err = Server::try_start_with_bin(BIN, &conf("location / { stream_demo 1 0; }")).expect_err("size 0");
    assert!(err.contains("invalid chunk size \"0\" in "), "{err}");
    let err = Server::try_start_with_bin(BIN, &conf("location / { stream_demo 1 1; stream_demo 1 1; }"))
        .expect_err("duplicate");
    assert!(err.contains("\"stream_demo\" directive is duplicate in "), "{err}");
    let err = Server::try_start_with_bin(BIN, &conf("stream_demo 1 1;")).expect_err("server level");
    assert!(err.contains("\"stream_demo\" directive is not allowed here in "), "{err}");
    let err = Server::try_start_with_bin(BIN, &conf("tag_filters maybe;")).expect_err("bad flag");
    assert!(err.contains("it must be \"on\" or \"off\""), "{err}");
}

/// Waits (bounded) until the error log shows `needle`.
fn wait_for_log(s: &Server, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !s.error_log().contains(needle) {
        assert!(Instant::now() < deadline, "no \"{needle}\" in the error log within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads everything until the server closes, in small reads with a pause
/// after each. Bounded by `limit`.
fn read_slowly(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        assert!(Instant::now() < deadline, "not done within {limit:?}; {} bytes so far", out.len());
        match stream.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("read failed ({e}) after {} bytes", out.len()),
        }
        thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn a_big_stream_read_slowly_arrives_complete_and_in_order() {
    const N: u64 = 256;
    const SIZE: usize = 64 * 1024;
    // Debug logging shows the handler's waits for Writable.
    let s = Server::start_with_bin(
        BIN,
        "#noprelude\n\
         daemon off; worker_processes 1; pid %%DIR%%/sluice.pid;\n\
         error_log %%DIR%%/error.log debug;\n\
         events {}\n\
         http { server { listen 127.0.0.1:%%PORT%%; \
                location /big { tag_filters on; stream_demo 256 64k; } } }",
    );
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send");
    // Not reading yet: 16 MiB cannot fit in the socket buffers, so the
    // filters must answer Again and the handler must wait.
    wait_for_log(&s, "stream_demo: output full after chunk", Duration::from_secs(20));
    let raw = read_slowly(&mut stream, Duration::from_secs(60));
    let (head, body) = split(&raw);
    assert_chunked_head(&head);
    assert_same_bytes(body, &chunked(N, SIZE, true));
    assert!(s.error_log().contains("stream_demo: writable, resuming at chunk"), "never resumed on Writable");
}

#[test]
fn keepalive_serves_a_second_stream_after_the_first() {
    let s = start("location /on { tag_filters on; stream_demo 2 16; }");
    let req: &[u8] = b"GET /on HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let resps = s.raw_keepalive(&[req, req]);
    assert_eq!(resps.len(), 2, "both requests answered on one connection");
    let want = [piece(0, 16, true), piece(1, 16, true)].concat();
    for r in &resps {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
        assert_eq!(common::show(&r.body), common::show(&want));
    }
}

#[test]
fn a_client_gone_mid_stream_does_not_stop_the_server() {
    let s = start("location /big { tag_filters on; stream_demo 256 64k; } location /small { stream_demo 1 4; }");
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).expect("some of the response");
    assert!(first[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", common::show(&first[..n]));
    drop(stream);
    let (head, body) = get(&s, "/small", "HTTP/1.1");
    assert_chunked_head(&head);
    assert_eq!(common::show(&body), common::show(&chunked(1, 4, false)));
}
