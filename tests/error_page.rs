//! End-to-end: `error_page` with `try_files`, `=code` and `=`, the method
//! change for the page, and `recursive_error_pages`.

mod common;

use common::Server;

const CONF: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    root %%DIR%%;
    location /tf/ { error_page 404 /nf; try_files $uri =404; }
    location /nf { return 200 "nf $request_method $uri\n"; }
    location /gif/ { error_page 404 =200 /empty.gif; }
    location /eq/ { error_page 404 = /code201; return 404; }
    location /code201 { return 201 "created\n"; }
    location /once/ { error_page 404 /missing-page; }
    location /rec/ { recursive_error_pages on; error_page 404 /rec2/; return 404; }
    location /rec2/ { error_page 404 /nf; return 404; }
    location /norec/ { error_page 404 /rec2/; return 404; }
    location /post/ { error_page 405 /nf; }
} }"#;

fn start() -> Server {
    let s = Server::start(CONF);
    s.write_file("empty.gif", "GIF89a");
    s.write_file("post/file", "f");
    s
}

fn text(s: &Server, path: &str) -> (u16, String) {
    let r = s.get(path);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[test]
fn try_files_status_uses_error_page_with_original_status() {
    let s = start();
    assert_eq!(text(&s, "/tf/x"), (404, "nf GET /nf\n".into()));
}

#[test]
fn overwrite_codes() {
    let s = start();
    let r = s.get("/gif/none");
    assert_eq!((r.status, &r.body[..]), (200, &b"GIF89a"[..]));
    assert_eq!(r.header("Content-Type"), Some("image/gif"));
    assert_eq!(text(&s, "/eq/"), (201, "created\n".into()));
}

#[test]
fn error_pages_are_not_recursive_unless_asked() {
    let s = start();
    // The page itself is missing: the built-in 404.
    let (status, body) = text(&s, "/once/x");
    assert_eq!(status, 404);
    assert!(body.contains("<title>404 Not Found</title>"), "{body}");
    // off: /rec2/'s own error_page is not used after /norec/'s.
    let (status, body) = text(&s, "/norec/");
    assert_eq!(status, 404);
    assert!(body.contains("<title>404 Not Found</title>"), "{body}");
    // on in the first location: the second error may use /rec2/'s pages.
    assert_eq!(text(&s, "/rec/"), (404, "nf GET /nf\n".into()));
}

#[test]
fn post_becomes_get_for_the_page_but_head_stays() {
    let s = start();
    let r = s.raw(b"POST /post/file HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    let t = String::from_utf8_lossy(&r);
    assert!(t.starts_with("HTTP/1.1 405") && t.ends_with("nf GET /nf\n"), "{t}");
    let r = s.raw(b"HEAD /tf/x HTTP/1.0\r\n\r\n");
    let t = String::from_utf8_lossy(&r);
    assert!(t.starts_with("HTTP/1.1 404") && t.ends_with("\r\n\r\n"), "{t}");
}

#[test]
fn refused_heads_get_the_error_page_and_an_access_log_line() {
    // As nginx: a head refused while it is read is answered and logged as
    // a request of the address's default server (or of the server its
    // Host named), so that server's error_page and access_log apply.
    let s = Server::start(
        r#"http { log_format t '"$request" $status [$host]';
            server { listen 127.0.0.1:%%PORT%%; server_name first;
                access_log %%DIR%%/first.log t;
                error_page 400 414 /err;
                location /err { return 200 "custom $status\n"; } }
            server { listen 127.0.0.1:%%PORT%%; server_name second;
                access_log %%DIR%%/second.log t;
                error_page 400 /err2;
                location /err2 { return 200 "second $status\n"; } } }"#,
    );
    let answer = |req: &[u8]| {
        let (r, _) = common::parse_response(&s.raw(req));
        (r.status, r.body_str())
    };
    // A garbage line, a request without Host (which once hung with an
    // error_page), a line too long for the buffers, a bad header line
    // after the Host of the second server.
    assert_eq!(answer(b"HELLO\r\n\r\n"), (400, "custom 400\n".to_string()));
    assert_eq!(answer(b"GET /x HTTP/1.1\r\n\r\n"), (400, "custom 400\n".to_string()));
    let long = format!("GET /{} HTTP/1.1\r\nHost: first\r\n\r\n", "a".repeat(40_000));
    assert_eq!(answer(long.as_bytes()), (414, "custom 414\n".to_string()));
    assert_eq!(answer(b"GET /y HTTP/1.1\r\nHost: second\r\nBad Line\r\n\r\n"), (400, "second 400\n".to_string()));
    let first = std::fs::read_to_string(s.dir().join("first.log")).unwrap_or_default();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "{first}");
    assert_eq!(lines[0], "\"HELLO\" 400 [first]");
    assert_eq!(lines[1], "\"GET /x HTTP/1.1\" 400 [first]");
    assert!(lines[2].starts_with("\"GET /aaaa") && lines[2].ends_with(" 414 [first]"), "{}", lines[2]);
    let second = std::fs::read_to_string(s.dir().join("second.log")).unwrap_or_default();
    assert_eq!(second, "\"GET /y HTTP/1.1\" 400 [second]\n");
}
