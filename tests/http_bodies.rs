//! End-to-end: request bodies sent to locations that answer with `return`.
//!
//! `return` reads no body: nginx discards it (so `$request_body` is empty)
//! and the next request on the connection must start right after it. Body
//! framing errors found in the head (501, 400) and `client_max_body_size`
//! (413, checked when the location is found) still apply.

mod common;

use std::thread;
use std::time::Duration;

use common::{parse_all, parse_response, show, Response, Server};

const CONF: &str = "http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    client_body_buffer_size 1k;
    location / { return 200 \"uri=$uri\\n\"; }
    location /rb { return 200 \"rb=[$request_body] cl=$content_length\\n\"; }
    location /small { client_max_body_size 10; return 200 \"small\\n\"; }
} }";

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// Asserts `r` is nginx's built-in page for this status, closing.
fn assert_closing_page(r: &Response, status: u16, reason: &str) {
    assert_eq!((r.status, r.reason.as_str()), (status, reason), "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.header("Connection"), Some("close"));
    let sig = r.header("Server").expect("Server header");
    let title = format!("{status} {reason}");
    assert_eq!(
        r.body_str(),
        format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
             <center><h1>{title}</h1></center>\r\n<hr><center>{sig}</center>\r\n\
             </body>\r\n</html>\r\n"
        )
    );
}

/// Sends `parts` on one connection, pausing between them, and returns all
/// the responses until the server closes.
fn exchange(s: &Server, parts: &[&[u8]]) -> Vec<Response> {
    let mut c = s.connect();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            thread::sleep(Duration::from_millis(30));
        }
        assert!(c.try_send(p), "server closed before part {i}");
    }
    parse_all(&c.read_to_end())
}

/// The two responses of a body request followed by [`NEXT`].
fn assert_body_then_next(rs: &[Response], first_body: &str) {
    let bodies: Vec<String> = rs.iter().map(Response::body_str).collect();
    assert_eq!(bodies, [first_body, "uri=/next\n"]);
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].header("Connection"), Some("keep-alive"));
    assert_eq!(rs[1].header("Connection"), Some("close"));
}

#[test]
fn content_length_body_is_discarded_and_the_next_request_parsed() {
    let s = Server::start(CONF);
    let mut req = b"POST /rb HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    req.extend_from_slice(NEXT);
    let rs = exchange(&s, &[&req]);
    assert_body_then_next(&rs, "rb=[] cl=5\n");
}

#[test]
fn body_that_looks_like_a_request_is_not_parsed_as_one() {
    let s = Server::start(CONF);
    let evil = b"GET /evil HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", evil.len());
    let mut req = head.into_bytes();
    req.extend_from_slice(evil);
    req.extend_from_slice(NEXT);
    let rs = exchange(&s, &[&req]);
    assert_body_then_next(&rs, "uri=/\n");
}

#[test]
fn content_length_body_split_over_writes() {
    let s = Server::start(CONF);
    let rs = exchange(&s, &[b"POST /rb HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhel", b"lo ", b"world", NEXT]);
    assert_body_then_next(&rs, "rb=[] cl=11\n");
}

#[test]
fn chunked_body_is_discarded_and_the_next_request_parsed() {
    let s = Server::start(CONF);
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        .to_vec();
    req.extend_from_slice(NEXT);
    let rs = exchange(&s, &[&req]);
    assert_body_then_next(&rs, "uri=/\n");
}

#[test]
fn chunked_body_split_at_awkward_points() {
    let s = Server::start(CONF);
    let rs = exchange(
        &s,
        &[
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5",
            b"\r",
            b"\nhel",
            b"lo\r",
            b"\n0\r\n",
            b"\r\n",
            NEXT,
        ],
    );
    assert_body_then_next(&rs, "uri=/\n");
}

#[test]
fn bodies_larger_than_the_body_buffer() {
    let s = Server::start(CONF);
    let big = vec![b'x'; 64 * 1024];
    let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", big.len());
    let rs = exchange(&s, &[head.as_bytes(), &big[..30_000], &big[30_000..], NEXT]);
    assert_body_then_next(&rs, "uri=/\n");

    let mut chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..8 {
        chunked.extend_from_slice(b"2000\r\n");
        chunked.extend_from_slice(&[b'y'; 0x2000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (a, b) = chunked.split_at(20_000);
    let rs = exchange(&s, &[a, b, NEXT]);
    assert_body_then_next(&rs, "uri=/\n");
}

#[test]
fn content_length_over_client_max_body_size_is_413() {
    let s = Server::start(CONF);
    let mut req = b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n".to_vec();
    req.extend_from_slice(&[b'z'; 100]);
    req.extend_from_slice(NEXT);
    let mut c = s.connect();
    c.send(&req);
    c.shutdown_write();
    let bytes = c.read_to_end();
    let (r, rest) = parse_response(&bytes);
    assert_closing_page(&r, 413, "Request Entity Too Large");
    assert!(rest.is_empty(), "answered after 413: {:?}", show(rest));
    // Exactly at the limit is fine.
    let mut req = b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
    req.extend_from_slice(NEXT);
    let rs = exchange(&s, &[&req]);
    assert_body_then_next(&rs, "small\n");
}

#[test]
fn chunked_body_over_the_limit_is_discarded_by_return() {
    // nginx checks client_max_body_size against chunks only while reading a
    // body; `return` discards it, so the request is answered normally.
    let s = Server::start(CONF);
    let mut req = b"POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        14\r\n01234567890123456789\r\n0\r\n\r\n"
        .to_vec();
    req.extend_from_slice(NEXT);
    let rs = exchange(&s, &[&req]);
    assert_body_then_next(&rs, "small\n");
}

#[test]
fn invalid_chunked_body_in_the_first_read_is_400() {
    let s = Server::start(CONF);
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
    req.extend_from_slice(NEXT);
    let mut c = s.connect();
    c.send(&req);
    c.shutdown_write();
    let bytes = c.read_to_end();
    let (r, rest) = parse_response(&bytes);
    assert_closing_page(&r, 400, "Bad Request");
    assert!(rest.is_empty(), "answered after 400: {:?}", show(rest));
}

#[test]
fn invalid_chunked_body_arriving_later_closes_the_connection() {
    let s = Server::start(CONF);
    let mut c = s.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    let r = c.read_response().expect("answered before the body");
    assert_eq!((r.status, r.body_str().as_str()), (200, "uri=/\n"));
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    let _ = c.try_send(b"5\r\nhello\r\nzz\r\n");
    let _ = c.try_send(NEXT);
    let rest = c.read_to_end();
    assert!(rest.is_empty(), "answered after a bad chunk: {:?}", show(&rest));
}

#[test]
fn head_framing_errors() {
    let s = Server::start(CONF);
    let cases: [(&[u8], u16, &str); 5] = [
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Not Implemented"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "Not Implemented"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
              Content-Length: 5\r\n\r\n0\r\n\r\n",
            400,
            "Bad Request",
        ),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Bad Request"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "Bad Request"),
    ];
    for (req, status, reason) in cases {
        let mut c = s.connect();
        c.send(req);
        let _ = c.try_send(NEXT);
        c.shutdown_write();
        let bytes = c.read_to_end();
        let (r, rest) = parse_response(&bytes);
        assert_closing_page(&r, status, reason);
        assert!(rest.is_empty(), "{:?}: then {:?}", show(req), show(rest));
    }
}

#[test]
fn bad_content_length_is_400() {
    let s = Server::start(CONF);
    for cl in ["abc", "-1", "5x", "99999999999999999999999"] {
        let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\n");
        let (r, _) = parse_response(&s.raw(req.as_bytes()));
        assert_closing_page(&r, 400, "Bad Request");
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let s = Server::start(CONF);
    let mut c = s.connect();
    c.send(b"POST /rb HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // nginx sends 100 Continue even though `return` only discards the body.
    let _ = c.closed_within(Duration::from_millis(700));
    assert!(c.buffered().starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"), "before the body: {:?}", show(c.buffered()));
    let r = c.read_response().expect("interim");
    assert_eq!(r.status, 100);
    assert!(r.headers.is_empty());
    c.send(b"hello");
    c.send(NEXT);
    let rs = parse_all(&c.read_to_end());
    assert_body_then_next(&rs, "rb=[] cl=5\n");
}

#[test]
fn expect_100_continue_is_answered_for_an_empty_body_in_any_case_and_only_for_100_continue() {
    // As nginx: the expectation is answered when the handler takes the
    // body, whatever its length; the value is compared without case.
    let s = Server::start(CONF);
    for value in ["100-continue", "100-Continue"] {
        let req = format!(
            "POST /rb HTTP/1.1\r\nHost: a\r\nExpect: {value}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let bytes = s.raw(req.as_bytes());
        assert!(bytes.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "{value}: {:?}", show(&bytes));
    }
    for value in ["unknown", "token=param", "100-continue, foo"] {
        let req = format!(
            "POST /rb HTTP/1.1\r\nHost: a\r\nExpect: {value}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let bytes = s.raw(req.as_bytes());
        assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"), "{value}: {:?}", show(&bytes));
    }
}

#[test]
fn expect_100_continue_is_not_sent_with_a_413_or_to_http10() {
    let s = Server::start(CONF);
    let mut c = s.connect();
    c.send(b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response().expect("final response");
    assert_closing_page(&r, 413, "Request Entity Too Large");

    let mut c = s.connect();
    c.send(b"POST /rb HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
    let r = c.read_response().expect("final response");
    assert_eq!((r.status, r.body_str().as_str()), (200, "rb=[] cl=5\n"));
    assert_eq!(r.header("Connection"), Some("close"));
}
