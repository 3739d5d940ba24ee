//! End-to-end: path traversal attempts never serve a file outside the root,
//! and each gets nginx's answer. The expected statuses were observed from
//! Debian's nginx 1.22 with the same configuration (run this file with
//! `SLUICE_TEST_BIN` naming an nginx to check them again).

mod common;

use common::{parse_response, Server};

/// A file beside the root, never to be served, and files inside it.
fn start() -> Server {
    let s = Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/root;
            location / { }
            location /a/ { alias %%DIR%%/root/dir/; } } }",
    );
    s.write_file("secret.txt", "secret outside the root\n");
    s.write_file("root/index.html", "inside\n");
    s.write_file("root/dir/page.txt", "in dir\n");
    s
}

/// (request target, status): `..` above the root in any spelling is a 400
/// (nginx's URI parser refuses it); what decodes to a name that does not
/// exist under the root is a 404.
const CORPUS: &[(&str, u16)] = &[
    ("/../secret.txt", 400),
    ("/%2e%2e/secret.txt", 400),
    ("/%2E%2E/secret.txt", 400),
    ("/.%2e/secret.txt", 400),
    ("/..%2fsecret.txt", 400),
    ("/%2e%2e%2fsecret.txt", 400),
    ("/..%00/secret.txt", 400),
    ("/%00", 400),
    ("//../secret.txt", 400),
    ("/./../secret.txt", 400),
    ("/dir/../../secret.txt", 400),
    ("/index.html/../../secret.txt", 400),
    ("/dir/%2e%2e%2f..%2fsecret.txt", 400),
    // Through an alias.
    ("/a/..%2f..%2fsecret.txt", 400),
    ("/a/%2e%2e/%2e%2e/secret.txt", 400),
    ("/a/%2e%2e%2f%2e%2e%2fsecret.txt", 400),
    ("/a/../secret.txt", 404),
    // Double encoding is decoded once: a literal "%2e%2e" name.
    ("/%252e%252e/secret.txt", 404),
    // Backslashes and overlong UTF-8 are not separators or dots on Unix.
    ("/..\\secret.txt", 404),
    ("/%2e%2e%5csecret.txt", 404),
    ("/%c0%ae%c0%ae/secret.txt", 404),
    ("/..;/secret.txt", 404),
    ("/a../secret.txt", 404),
];

#[test]
fn traversal_attempts_get_nginx_s_answers_and_never_the_file() {
    let s = start();
    for &(target, status) in CORPUS {
        for version in ["HTTP/1.0", "HTTP/1.1"] {
            let req = format!("GET {target} {version}\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let raw = s.raw(req.as_bytes());
            let (r, _) = parse_response(&raw);
            assert_eq!(r.status, status, "{target} {version}");
            assert!(
                !String::from_utf8_lossy(&r.body).contains("secret outside"),
                "{target}: the file outside the root was served"
            );
        }
    }
}

#[test]
fn dot_segments_that_stay_inside_the_root_resolve() {
    let s = start();
    for (target, body) in
        [("/dir/../index.html", "inside\n"), ("/a/../index.html", "inside\n"), ("/dir/./page.txt", "in dir\n")]
    {
        let r = s.get(target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, body.as_bytes(), "{target}");
    }
    // The absolute form is held to the same rules.
    let raw = s.raw(b"GET http://localhost/../secret.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(parse_response(&raw).0.status, 400);
}
