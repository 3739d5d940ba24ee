//! End-to-end: `expires` (headers module), as nginx's headers.t checks it.

mod common;

use common::Server;

const CONF: &str = r#"http { server {
    listen 127.0.0.1:%%PORT%%;
    server_name localhost;
    root %%DIR%%/html;
    expires epoch;
    location /t1 { }
    location /nx { }
    location /max { expires max; }
    location /off { expires off; }
    location /access { expires 2048; location /access_inner { } }
    location /negative { expires -2048; }
    location /daily { expires @15h30m33s; }
    location /modified { expires modified 2048; }
    location /var { expires $arg_e; location /var_modified { expires modified $arg_e; } }
    location /replace { add_header Cache-Control private; expires 60; }
} }"#;

#[test]
fn expires_variants() {
    let s = Server::start(CONF);
    for f in ["t1", "max", "off", "access", "access_inner", "negative", "daily", "modified", "var", "var_modified"] {
        s.write_file(&format!("html/{f}"), "");
    }
    s.write_file("html/replace", "");
    let h = |path: &str, name: &str| s.get(path).header(name).map(str::to_string);
    assert_eq!(h("/t1", "Expires").as_deref(), Some("Thu, 01 Jan 1970 00:00:01 GMT"));
    assert_eq!(h("/t1", "Cache-Control").as_deref(), Some("no-cache"));
    assert_eq!(h("/nx", "Cache-Control"), None, "not on a 404");
    assert_eq!(h("/max", "Expires").as_deref(), Some("Thu, 31 Dec 2037 23:55:55 GMT"));
    assert_eq!(h("/max", "Cache-Control").as_deref(), Some("max-age=315360000"));
    assert_eq!(h("/off", "Expires"), None);
    assert_eq!(h("/access", "Cache-Control").as_deref(), Some("max-age=2048"));
    assert_eq!(h("/access_inner", "Cache-Control").as_deref(), Some("max-age=2048"));
    assert_eq!(h("/negative", "Cache-Control").as_deref(), Some("no-cache"));
    assert!(h("/daily", "Expires").unwrap().ends_with(":33 GMT"));
    assert!(h("/modified", "Cache-Control").unwrap().starts_with("max-age=204"));
    assert_eq!(h("/var?e=max", "Cache-Control").as_deref(), Some("max-age=315360000"));
    assert_eq!(h("/var?e=2048", "Cache-Control").as_deref(), Some("max-age=2048"));
    assert_eq!(h("/var?e=-2048", "Cache-Control").as_deref(), Some("no-cache"));
    assert!(h("/var?e=@33s", "Expires").unwrap().ends_with(":33 GMT"));
    assert!(h("/var_modified?e=2048", "Cache-Control").unwrap().starts_with("max-age=204"));
    for bad in ["/var", "/var?e=bad", "/var?e=off", "/var_modified?e=epoch"] {
        assert_eq!(h(bad, "Expires"), None, "{bad}");
    }
    // As in nginx, `expires` comes first and `add_header` adds its own.
    let r = s.get("/replace");
    assert_eq!(r.headers_all("Cache-Control"), vec!["max-age=60", "private"]);
}

#[test]
fn bad_values_are_refused() {
    for (v, msg) in [
        ("expires bad;", "\"expires\" directive invalid value"),
        ("expires @25h;", "\"expires\" directive daily time value must be less than 24 hours"),
        ("expires modified @1h;", "daily time cannot be used with \"modified\" parameter"),
        ("expires later 1h;", "\"expires\" directive invalid value"),
        ("expires 1h; expires 2h;", "\"expires\" directive is duplicate"),
    ] {
        let conf = format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {v} }} }}");
        let e = Server::try_start(&conf).expect_err(v);
        assert!(e.contains(msg), "{v}: {e}");
    }
}
