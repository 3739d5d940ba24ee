//! Unit tests of the rewrite module (request-level behaviour is tested
//! end to end in `tests/rewrite.rs`).

use super::*;
use std::path::Path;

/// Loads `http { <body> }` with the rewrite module; the error text if any.
fn load(body: &str) -> Result<(), String> {
    let text = format!("http {{ {body} }}");
    let conf =
        sluice_core::conf::parse_str(&text, Path::new("t.conf"), Path::new("/tmp")).map_err(|e| e.to_string())?;
    let modules = sluice_http::Modules::new(vec![Arc::new(RewriteModule)]).map_err(|e| e.to_string())?;
    sluice_http::config::load_http(&modules, &conf.statements[0], Path::new("/tmp"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn redirects_are_unescaped_as_nginx_does() {
    let u = |s: &str| String::from_utf8(unescape_redirect(s.as_bytes()).to_vec()).unwrap();
    assert_eq!(u("http%3A%2F%2Fexample.com%2F%3Ffrom"), "http://example.com/?from");
    assert_eq!(u("http%3A%2F%2Fexample.com%0D%0Asplit"), "http://example.com%0D%0Asplit");
    assert_eq!(u("http://x/?a=%41"), "http://x/?a=%41");
    assert_eq!(u("/a%20b%41%zz%4"), "/a%20bA%zz%4");
    assert_eq!(u("/%3fq%41"), "/?q%41");
}

#[test]
fn truthiness_is_nginx_s() {
    assert!(!truthy(b""));
    assert!(!truthy(b"0"));
    assert!(truthy(b"00"));
    assert!(truthy(b"1"));
    assert!(truthy(b"off"));
}

#[test]
fn file_tests() {
    let dir = std::env::temp_dir();
    let d = dir.to_str().unwrap().as_bytes();
    assert!(file_test(d, &FileTest::Dir));
    assert!(file_test(d, &FileTest::Exists));
    assert!(file_test(d, &FileTest::Exec));
    assert!(!file_test(d, &FileTest::File));
    assert!(file_test(b"/etc/passwd", &FileTest::File));
    assert!(!file_test(b"/etc/passwd", &FileTest::Exec));
    assert!(!file_test(b"/nonexistent/x", &FileTest::Exists));
}

#[test]
fn configurations_nginx_accepts() {
    load("server { rewrite ^/(\\w+)$ /x/$1?a=$1 last; set $v 1; if ($v) { return 204; } }").unwrap();
    load("server { location / { if ( $arg_a = \"\" ) { rewrite ^ /b break; } rewrite ^ http://e/ permanent; } }")
        .unwrap();
    load(
        "server { location / { if (!-f $request_filename) { root /tmp; } if ($uri ~* ^/(?<n>a)) { return 200 $n; } } }",
    )
    .unwrap();
    load("server { location / { set $a 1; set $a 2; break; rewrite_log on; uninitialized_variable_warn off; } }")
        .unwrap();
}

#[test]
fn configuration_errors_read_like_nginx() {
    let err = |body: &str| load(body).unwrap_err();
    assert!(err("server { rewrite ^ /x bogus; }").starts_with("invalid parameter \"bogus\""));
    assert!(err("server { rewrite ( /x; }").starts_with("pcre2_compile() failed"));
    assert!(err("server { rewrite ^ \"\"; }").starts_with("empty replacement"));
    assert!(err("server { if ($a) { } }").starts_with("unknown \"a\" variable"));
    assert!(err("server { if (-q /x) { } }").starts_with("invalid condition \"-q\""));
    assert!(err("server { if ($uri % x) { } }").starts_with("unexpected \"%\" in condition"));
    assert!(err("server { if $uri { } }").starts_with("invalid condition"));
    assert!(err("server { set uri 1; }").starts_with("invalid variable name \"uri\""));
    assert!(err("server { set $uri 1; }").starts_with("the duplicate \"uri\" variable"));
    assert!(err("server { location / { if ($uri) { if ($uri) { } } } }").contains("not allowed here"));
    assert!(err("server { return abc; }").starts_with("invalid return code \"abc\""));
}
