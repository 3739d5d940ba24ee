//! End-to-end tests of request bodies read by a handler (`body_echo`):
//! Content-Length and chunked bodies, in memory and spilled to a temp file
//! past `client_body_buffer_size` (removed when the request ends),
//! `Expect: 100-continue`, and `client_max_body_size`.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{parse_response, Server};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-filter-order");

fn start() -> Server {
    Server::start_with_bin(
        BIN,
        "http { client_body_temp_path %%DIR%%/body_temp; client_body_buffer_size 16k;
            client_max_body_size 4m; sendfile on;
            server { listen 127.0.0.1:%%PORT%%;
                location /echo { body_echo; }
                location /small { body_echo; client_max_body_size 10; } } }",
    )
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]).collect()
}

fn temp_files(s: &Server) -> usize {
    std::fs::read_dir(s.dir().join("body_temp")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_small_body_is_read_in_memory() {
    let s = start();
    let body = pattern(100);
    let mut req = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
    req.extend_from_slice(&body);
    let (r, _) = parse_response(&s.raw(&req));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Body-In-File"), Some("no"));
    assert_eq!(r.body, body);
}

#[test]
fn a_large_body_spills_to_a_temp_file_that_is_removed() {
    let s = start();
    let body = pattern(1_000_000);
    let mut c = s.connect();
    c.send(format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    // In pieces, so the reader waits for the rest more than once.
    for piece in body.chunks(100_000) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = c.read_response().expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Body-In-File"), Some("yes"));
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the body comes back byte for byte");
    // The connection goes on, and the temp file is gone with the request.
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok");
    let r2 = c.read_response().expect("second response");
    assert_eq!(r2.body, b"ok");
    assert_eq!(temp_files(&s), 0, "temp files removed");
}

#[test]
fn a_chunked_body_split_at_every_size_is_read_whole() {
    let s = start();
    let body = pattern(40_000);
    let mut wire =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for (i, piece) in body.chunks(997).enumerate() {
        wire.extend_from_slice(format!("{:x}{}\r\n", piece.len(), if i % 2 == 0 { ";ext=1" } else { "" }).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let (r, _) = parse_response(&s.raw(&wire));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Body-In-File"), Some("yes"));
    assert!(r.body == body);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let s = start();
    let mut c = s.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response().expect("interim response");
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.read_response().expect("final response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
}

#[test]
fn a_body_over_the_limit_is_413() {
    let s = start();
    let raw = s.raw(b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world");
    let (r, _) = parse_response(&raw);
    assert_eq!(r.status, 413);
    // A chunked body is measured as it arrives.
    let raw = s.raw(b"POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nb\r\nhello world\r\n0\r\n\r\n");
    let (r, _) = parse_response(&raw);
    assert_eq!(r.status, 413);
}
