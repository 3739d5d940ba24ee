//! End-to-end: byte ranges of static files (the range module), raw and
//! through curl.

mod common;

use std::process::Command;

use common::{parse_response, Response, Server};

const CONF: &str = "http { server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%;
    location /two/ { max_ranges 2; }
    location /none/ { max_ranges 0; }
} }";

/// 1000 bytes: `X000XXXXXX` .. `X099XXXXXX`, as nginx's range.t.
fn body() -> String {
    (0..100).map(|i| format!("X{i:03}XXXXXX")).collect()
}

fn server() -> Server {
    let s = Server::start(CONF);
    for f in ["t.txt", "two/t.txt", "none/t.txt"] {
        s.write_file(f, body());
    }
    s
}

fn get(s: &Server, path: &str, extra: &str) -> Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n");
    let bytes = s.raw(req.as_bytes());
    let (resp, rest) = parse_response(&bytes);
    assert!(rest.is_empty(), "bytes after the response");
    resp
}

#[test]
fn whole_file_advertises_ranges() {
    let s = server();
    let r = get(&s, "/t.txt", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(get(&s, "/none/t.txt", "").header("Accept-Ranges"), None, "max_ranges 0");
}

#[test]
fn single_ranges() {
    let s = server();
    for (spec, range, data) in [
        ("0-9", "bytes 0-9/1000", "X000XXXXXX"),
        ("-10", "bytes 990-999/1000", "X099XXXXXX"),
        ("990-", "bytes 990-999/1000", "X099XXXXXX"),
        ("990-5000", "bytes 990-999/1000", "X099XXXXXX"),
        ("12-13", "bytes 12-13/1000", "01"),
    ] {
        let r = get(&s, "/t.txt", &format!("Range: bytes={spec}\r\n"));
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(r.header("Content-Range"), Some(range), "{spec}");
        assert_eq!(r.header("Content-Length"), Some(data.len().to_string().as_str()));
        assert_eq!(r.header("Accept-Ranges"), None);
        assert_eq!(r.body_str(), data, "{spec}");
    }
}

#[test]
fn multipart_ranges_read_like_nginx() {
    let s = server();
    let r = get(&s, "/t.txt", "Range: bytes=0-9, -10, 10-19\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("Content-Type").unwrap().to_string();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").expect("multipart type");
    assert_eq!(boundary.len(), 20);
    assert!(boundary.bytes().all(|c| c.is_ascii_digit()));
    let part = |range: &str, data: &str| {
        format!("\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes {range}/1000\r\n\r\n{data}")
    };
    let expect = part("0-9", "X000XXXXXX")
        + &part("990-999", "X099XXXXXX")
        + &part("10-19", "X001XXXXXX")
        + &format!("\r\n--{boundary}--\r\n");
    assert_eq!(r.body_str(), expect);
    assert_eq!(r.header("Content-Length"), Some(expect.len().to_string().as_str()));
}

#[test]
fn unsatisfiable_and_ignored_ranges() {
    let s = server();
    for spec in ["100000-", "alpha", "10-alpha", "10", "10-11 12-"] {
        let r = get(&s, "/t.txt", &format!("Range: bytes={spec}\r\n"));
        assert_eq!(r.status, 416, "{spec}");
        assert_eq!(r.header("Content-Range"), Some("bytes */1000"));
        assert_eq!(r.header("Content-Type"), Some("text/html"));
        assert!(r.body_str().contains("<title>416 Requested Range Not Satisfiable</title>"));
    }
    // Overlaps adding up to more than the file, too many ranges, another unit.
    for (path, extra) in [
        ("/t.txt", "Range: bytes=0-10001, 0-0\r\n"),
        ("/two/t.txt", "Range: bytes=0-9, -10, 10-19\r\n"),
        ("/none/t.txt", "Range: bytes=0-9\r\n"),
        ("/t.txt", "Range: items=0-9\r\n"),
    ] {
        let r = get(&s, path, extra);
        assert_eq!((r.status, r.body.len()), (200, 1000), "{path} {extra}");
    }
    assert_eq!(get(&s, "/two/t.txt", "Range: bytes=0-9, -10, 10000-\r\n").status, 206);
}

#[test]
fn if_range_by_date_and_etag() {
    let s = server();
    let whole = get(&s, "/t.txt", "");
    let etag = whole.header("ETag").unwrap().to_string();
    let lm = whole.header("Last-Modified").unwrap().to_string();
    assert_eq!(get(&s, "/t.txt", &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n")).status, 206);
    assert_eq!(get(&s, "/t.txt", &format!("Range: bytes=0-9\r\nIf-Range: {lm}\r\n")).status, 206);
    assert_eq!(get(&s, "/t.txt", "Range: bytes=0-9\r\nIf-Range: \"other\"\r\n").status, 200);
    let r = get(&s, "/t.txt", "Range: bytes=0-9\r\nIf-Range: Mon, 28 Sep 1970 06:00:00 GMT\r\n");
    assert_eq!((r.status, r.body.len()), (200, 1000));
}

#[test]
fn head_gets_the_range_head_only() {
    let s = server();
    let bytes = s.raw(b"HEAD /t.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nRange: bytes=5-9\r\n\r\n");
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{text}");
    assert!(text.contains("\r\nContent-Length: 5\r\n"));
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
}

#[test]
fn curl_range() {
    let s = server();
    let url = format!("http://127.0.0.1:{}/t.txt", s.port());
    let out = Command::new("curl").args(["-s", "--noproxy", "*", "-r", "0-9", &url]).output().expect("run curl");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "X000XXXXXX");
    let out = Command::new("curl").args(["-s", "--noproxy", "*", "-r", "-10", "-i", &url]).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 206 Partial Content"), "{text}");
    assert!(text.contains("Content-Range: bytes 990-999/1000"), "{text}");
    assert!(text.ends_with("X099XXXXXX"), "{text}");
}
