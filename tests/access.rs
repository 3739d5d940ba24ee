//! End-to-end: `allow`, `deny` and `satisfy`, as nginx answers them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{parse_response, Response, Server};

const CONF: &str = r#"http { server {
    listen 127.0.0.1:%%PORT%%;
    listen [::1]:%%PORT2%%;
    server_name localhost;
    root %%DIR%%/html;
    allow 10.0.0.0/8;
    location /open { }
    location /deny_all { deny all; }
    location /allow_lo { allow 127.0.0.1; deny all; }
    location /first { deny 127.0.0.0/8; allow 127.0.0.1; }
    location /net { allow 192.168.0.0/16; allow 127.0.0.0/24; deny all; }
    location /v6 { allow ::1; deny all; }
    location /v6net { deny 2001:db8::/32; allow ::/0; deny all; }
    location /outer {
        deny all;
        location /outer/inner { allow 127.0.0.1; }
        location /outer/inherit { }
    }
} }"#;

/// Files named as the locations, each holding its own name.
fn write_files(s: &Server, names: &[&str]) {
    for n in names {
        s.write_file(&format!("html/{n}"), format!("{n}\n"));
    }
}

fn get_v6(port: u16, path: &str) -> Response {
    let mut s = TcpStream::connect(("::1", port)).expect("connect [::1]");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_response(&buf).0
}

#[test]
fn rules_in_order_and_inheritance() {
    let s = Server::start(CONF);
    write_files(&s, &["open", "deny_all", "allow_lo", "first", "net", "outer/inner", "outer/inherit", "outer/x"]);
    // The server level's `allow 10.0.0.0/8` matches nobody here: no match
    // lets the request through.
    assert_eq!(s.get("/open").body_str(), "open\n");
    assert_eq!(s.get("/allow_lo").body_str(), "allow_lo\n");
    assert_eq!(s.get("/net").body_str(), "net\n");
    assert_eq!(s.get("/outer/inner").body_str(), "outer/inner\n");
    for path in ["/deny_all", "/first", "/outer/inherit", "/outer/x"] {
        let r = s.get(path);
        assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden"), "{path}");
        assert!(r.body_str().contains("<title>403 Forbidden</title>"), "{path}");
    }
    assert_eq!(s.error_log().matches("access forbidden by rule").count(), 4);
}

#[test]
fn ipv6_clients() {
    let s = Server::start(CONF);
    write_files(&s, &["v6", "v6net", "allow_lo"]);
    assert_eq!(get_v6(s.port2(), "/v6").body_str(), "v6\n");
    assert_eq!(get_v6(s.port2(), "/v6net").body_str(), "v6net\n");
    assert_eq!(get_v6(s.port2(), "/allow_lo").status, 403);
    assert_eq!(s.get("/v6").status, 403, "an IPv4 client does not match ::1");
}

#[test]
fn bad_rules_are_refused() {
    for (rule, msg) in [
        ("allow 1.2.3.4/33;", "invalid parameter \"1.2.3.4/33\""),
        ("deny example.com;", "invalid parameter \"example.com\""),
        ("satisfy some;", "invalid value \"some\" in \"satisfy\" directive, it must be \"all\" or \"any\""),
    ] {
        let conf = format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {rule} }} }}");
        let e = Server::try_start(&conf).expect_err(rule);
        assert!(e.contains(msg), "{rule}: {e}");
    }
}

const SATISFY: &str = r#"http { server {
    listen 127.0.0.1:%%PORT%%;
    server_name localhost;
    root %%DIR%%/html;
    auth_basic "closed";
    auth_basic_user_file %%DIR%%/htpasswd;
    location /any_allowed { satisfy any; allow 127.0.0.1; deny all; }
    location /any_denied { satisfy any; deny all; }
    location /any_noauth { satisfy any; auth_basic off; deny all; }
    location /all_allowed { allow 127.0.0.1; }
} }"#;

fn get_auth(s: &Server, path: &str, auth: Option<&str>) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    req.push_str("\r\n");
    parse_response(&s.raw(req.as_bytes())).0
}

#[test]
fn satisfy_any_and_all() {
    let s = Server::start(SATISFY);
    s.write_file("htpasswd", "joe:{PLAIN}secret\n");
    write_files(&s, &["any_allowed", "any_denied", "any_noauth", "all_allowed"]);
    // "joe:secret" and "joe:wrong".
    let good = Some("am9lOnNlY3JldA==");
    let bad = Some("am9lOndyb25n");
    // any: the address is enough.
    assert_eq!(get_auth(&s, "/any_allowed", None).status, 200);
    // any: denied address, so the password decides; 401 wins over 403.
    let r = get_auth(&s, "/any_denied", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"closed\""));
    assert_eq!(get_auth(&s, "/any_denied", good).body_str(), "any_denied\n");
    assert_eq!(get_auth(&s, "/any_denied", bad).status, 401);
    // any, with no password check: the remembered 403.
    assert_eq!(get_auth(&s, "/any_noauth", None).status, 403);
    // all: the address passes but the password is still required.
    assert_eq!(get_auth(&s, "/all_allowed", None).status, 401);
    assert_eq!(get_auth(&s, "/all_allowed", good).status, 200);
    let log = s.error_log();
    assert_eq!(log.matches("access forbidden by rule").count(), 1, "{log}");
}

#[test]
fn limit_except_applies_its_block_to_the_other_methods() {
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/html;
            location /ro { limit_except GET { deny all; } }
            location /post { limit_except post { auth_basic "writers"; auth_basic_user_file %%DIR%%/htpasswd; } }
            location /log { limit_except GET { access_log %%DIR%%/writes.log; } } } }"#,
    );
    s.write_file("htpasswd", "joe:{PLAIN}secret\n");
    write_files(&s, &["ro", "post", "log"]);
    let status = |method: &str, path: &str| {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let bytes = s.raw(req.as_bytes());
        if method == "HEAD" {
            common::parse_head_response(&bytes).0.status
        } else {
            parse_response(&bytes).0.status
        }
    };
    // GET, and HEAD with it, pass; every other method gets the block: deny.
    assert_eq!((status("GET", "/ro"), status("HEAD", "/ro")), (200, 200));
    for m in ["POST", "PUT", "DELETE", "PATCH", "FOO"] {
        assert_eq!(status(m, "/ro"), 403, "{m}");
    }
    // Method names in any case; POST passes (static answers it with 405),
    // the others need a password.
    assert_eq!(status("POST", "/post"), 405);
    assert_eq!(status("GET", "/post"), 401);
    // The block's own access_log: only what it covers goes there.
    assert_eq!(status("GET", "/log"), 200);
    assert_eq!(status("DELETE", "/log"), 405);
    let writes = std::fs::read_to_string(s.dir().join("writes.log")).unwrap_or_default();
    assert_eq!(writes.lines().count(), 1, "{writes}");
    assert!(writes.contains("\"DELETE /log HTTP/1.1\" 405"), "{writes}");
    // Refused when written wrong.
    let e = Server::try_start("http { server { listen 127.0.0.1:%%PORT%%; location / { limit_except GETS { } } } }")
        .expect_err("bad method");
    assert!(e.contains("invalid method \"GETS\""), "{e}");
    let e = Server::try_start(
        "http { server { listen 127.0.0.1:%%PORT%%; location / { limit_except GET { } limit_except POST { } } } }",
    )
    .expect_err("twice");
    assert!(e.contains("\"limit_except\" directive is duplicate"), "{e}");
    let e =
        Server::try_start("http { server { listen 127.0.0.1:%%PORT%%; limit_except GET { } } }").expect_err("place");
    assert!(e.contains("\"limit_except\" directive is not allowed here"), "{e}");
}
