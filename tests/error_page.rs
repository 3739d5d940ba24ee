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
