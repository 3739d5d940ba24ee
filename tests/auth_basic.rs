//! End-to-end: `auth_basic` and `auth_basic_user_file`, as nginx answers.

mod common;

use common::{parse_response, Response, Server};

const CONF: &str = r#"http { server {
    listen 127.0.0.1:%%PORT%%;
    server_name localhost;
    root %%DIR%%/html;
    location / {
        auth_basic "closed site";
        auth_basic_user_file %%DIR%%/htpasswd;
       
        location /inner { auth_basic off; }
        location /var { auth_basic_user_file $arg_f; }
        location /realm { auth_basic $arg_r; }
        location /missing { auth_basic_user_file %%DIR%%/nx; }
        location /dir { auth_basic_user_file %%DIR%%; }
    }
} }"#;

/// `GET path` with an optional `Authorization` header value.
/// The files the locations serve.
fn write_files(s: &Server) {
    s.write_file("htpasswd", HTPASSWD);
    for n in ["index.html", "inner", "var", "realm", "missing", "dir"] {
        let body = if n == "index.html" { "SEETHIS\n".to_string() } else { format!("{n}\n") };
        s.write_file(&format!("html/{n}"), body);
    }
}

fn get_auth(s: &Server, path: &str, auth: Option<&str>) -> Response {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    parse_response(&s.raw(req.as_bytes())).0
}

const HTPASSWD: &str = "# users\n\
    plain:{PLAIN}password\n\
    sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\
    apr1:$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.:extra field\r\n\
    bcrypt:$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe\n\
    last:{PLAIN}password";

// base64("plain:password"), ("sha:password"), ("apr1:password"),
// ("bcrypt:password"), ("last:password"), ("plain:123"), ("nobody:1").
const PLAIN: &str = "Basic cGxhaW46cGFzc3dvcmQ=";
const SHA: &str = "Basic c2hhOnBhc3N3b3Jk";
const APR1: &str = "Basic YXByMTpwYXNzd29yZA==";
const BCRYPT: &str = "Basic YmNyeXB0OnBhc3N3b3Jk";
const LAST: &str = "Basic bGFzdDpwYXNzd29yZA";
const WRONG: &str = "Basic cGxhaW46MTIz";
const NOBODY: &str = "Basic bm9ib2R5OjE=";

#[test]
fn challenge_and_passwords() {
    let s = Server::start(CONF);
    write_files(&s);
    let r = get_auth(&s, "/", None);
    assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"closed site\""));
    assert!(r.body_str().contains("<title>401 Authorization Required</title>"), "{}", r.body_str());
    for ok in [PLAIN, SHA, APR1, BCRYPT, LAST] {
        assert_eq!(get_auth(&s, "/", Some(ok)).body_str(), "SEETHIS\n", "{ok}");
    }
    for bad in [WRONG, NOBODY, "Basic", "Basic !!!", "Bearer x"] {
        let r = get_auth(&s, "/", Some(bad));
        assert_eq!(r.status, 401, "{bad}");
        assert!(r.header("WWW-Authenticate").is_some(), "{bad}");
    }
    assert_eq!(get_auth(&s, "/inner", None).body_str(), "inner\n");
    let log = s.error_log();
    assert!(log.contains("user \"plain\": password mismatch"), "{log}");
    let nf = format!("user \"nobody\" was not found in \"{}/htpasswd\"", s.dir().display());
    assert!(log.contains(&nf), "{log}");
}

#[test]
fn user_file_and_realm_with_variables() {
    let s = Server::start(CONF);
    write_files(&s);
    // A relative name is taken from the prefix.
    assert_eq!(get_auth(&s, "/var?f=htpasswd", Some(APR1)).body_str(), "var\n");
    assert_eq!(get_auth(&s, "/var?f=nx", Some(APR1)).status, 403);
    assert_ne!(get_auth(&s, "/var", Some(APR1)).status, 200);
    assert_eq!(get_auth(&s, "/realm?r=off", None).body_str(), "realm\n");
    let r = get_auth(&s, "/realm?r=here", None);
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"here\""));
}

#[test]
fn unreadable_user_files() {
    let s = Server::start(CONF);
    write_files(&s);
    let r = get_auth(&s, "/missing", Some(PLAIN));
    assert_eq!(r.status, 403);
    let r = get_auth(&s, "/dir", Some(PLAIN));
    assert_eq!(r.status, 500);
    let log = s.error_log();
    let missing = format!("open() \"{}/nx\" failed (2: No such file or directory)", s.dir().display());
    assert!(log.contains(&missing), "{log}");
    assert!(log.contains("(21: Is a directory)"), "{log}");
}

#[test]
fn duplicate_directives_are_refused() {
    let conf = "http { server { listen 127.0.0.1:%%PORT%%; auth_basic a; auth_basic b; } }";
    let e = Server::try_start(conf).expect_err("duplicate");
    assert!(e.contains("\"auth_basic\" directive is duplicate"), "{e}");
}

#[test]
fn auth_delay_holds_back_refusals_only() {
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%/html;
            location / { auth_delay 1s; auth_basic "closed"; auth_basic_user_file %%DIR%%/htpasswd; }
            location /any { auth_delay 1s; satisfy any; deny all;
                auth_basic "closed"; auth_basic_user_file %%DIR%%/htpasswd; }
            location /deny { auth_delay 1s; deny all; } } }"#,
    );
    s.write_file("htpasswd", "user:{PLAIN}good\n");
    for f in ["in", "any", "deny"] {
        s.write_file(&format!("html/{f}"), f);
    }
    // user:bad and user:good
    let (bad, good) = ("Basic dXNlcjpiYWQ=", "Basic dXNlcjpnb29k");
    for path in ["/in", "/any"] {
        let began = std::time::Instant::now();
        let r = get_auth(&s, path, Some(bad));
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(
            began.elapsed() >= std::time::Duration::from_millis(900),
            "{path}: answered after {:?}",
            began.elapsed()
        );
        assert_eq!(get_auth(&s, path, Some(good)).status, 200, "{path}");
    }
    assert!(s.error_log().contains("delaying unauthorized request"), "{}", s.error_log());
    // A 403 is not delayed (nor logged so).
    assert_eq!(get_auth(&s, "/deny", None).status, 403);
    assert_eq!(s.error_log().matches("delaying unauthorized request").count(), 2);
}
