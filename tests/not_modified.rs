//! End-to-end: conditional requests on static files (the not_modified
//! module), raw and through curl.

mod common;

use std::process::Command;

use common::{parse_response, Response, Server};

const CONF: &str = "http { server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%;
    location /before/ { if_modified_since before; }
    location /off/ { if_modified_since off; }
} }";

fn server() -> Server {
    let s = Server::start(CONF);
    for f in ["t.txt", "before/t.txt", "off/t.txt"] {
        s.write_file(f, "hello, world\n");
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
fn if_modified_since_modes() {
    let s = server();
    let lm = get(&s, "/t.txt", "").header("Last-Modified").unwrap().to_string();
    let r = get(&s, "/t.txt", &format!("If-Modified-Since: {lm}\r\n"));
    assert_eq!(r.status, 304);
    assert_eq!(r.body.len(), 0);
    assert_eq!(r.header("Content-Type"), None);
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Accept-Ranges"), None);
    assert_eq!(r.header("Last-Modified"), Some(lm.as_str()));
    assert!(r.header("ETag").is_some());
    let later = "If-Modified-Since: Tue, 19 Jan 2038 03:14:07 GMT\r\n";
    assert_eq!(get(&s, "/t.txt", later).status, 200, "exact wants the same date");
    assert_eq!(get(&s, "/before/t.txt", later).status, 304);
    assert_eq!(get(&s, "/before/t.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n").status, 200);
    assert_eq!(get(&s, "/off/t.txt", &format!("If-Modified-Since: {lm}\r\n")).status, 200);
    assert_eq!(get(&s, "/t.txt", "If-Modified-Since: nonsense\r\n").status, 200);
}

#[test]
fn entity_tags() {
    let s = server();
    let etag = get(&s, "/t.txt", "").header("ETag").unwrap().to_string();
    for (h, status) in [
        (format!("If-None-Match: {etag}"), 304),
        ("If-None-Match: \"foo\"".to_string(), 200),
        (format!("If-None-Match: \"foo\", {etag} , \"bar\""), 304),
        ("If-None-Match: *".to_string(), 304),
        (format!("If-None-Match: W/{etag}"), 304),
        (format!("If-Match: {etag}"), 200),
        ("If-Match: \"foo\"".to_string(), 412),
        (format!("If-Match: W/{etag}"), 412),
        ("If-Match: *".to_string(), 200),
        ("If-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT".to_string(), 412),
        ("If-Unmodified-Since: Tue, 19 Jan 2038 03:14:07 GMT".to_string(), 200),
    ] {
        let r = get(&s, "/t.txt", &format!("{h}\r\n"));
        assert_eq!(r.status, status, "{h}");
        if status == 412 {
            assert!(r.body_str().contains("<title>412 Precondition Failed</title>"));
            assert_eq!(r.header("ETag"), None);
        }
    }
    // Preconditions only apply to what would be a 200.
    assert_eq!(get(&s, "/nx", "If-Match: \"foo\"\r\n").status, 404);
}

#[test]
fn curl_time_condition() {
    let s = server();
    let url = format!("http://127.0.0.1:{}/t.txt", s.port());
    let lm = get(&s, "/t.txt", "").header("Last-Modified").unwrap().to_string();
    let code = |date: &str| {
        let out = Command::new("curl")
            .args(["-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-z", date, &url])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code(&lm), "304");
    assert_eq!(code("Thu, 01 Jan 1970 00:00:01 GMT"), "200");
}
