//! End-to-end: `map` variables — exact, wildcard and regex keys, values
//! with variables and captures, caching per request and `volatile`.

mod common;

use common::Server;

#[test]
fn map_lookups() {
    let s = Server::start(
        r#"http {
            map $arg_h $site {
                hostnames;
                default          none;
                example.com      exact;
                *.example.com    sub;
                www.example.*    tail;
                ~^(?<name>\w+)\.test$  test-$name-$1;
                \default         literal;
            }
            map $uri $kind { default $site/$arg_k; ~*\.PNG$ image; /x x; }
            server { listen 127.0.0.1:%%PORT%%;
                location / { return 200 "$site|$kind"; }
            }
        }"#,
    );
    assert_eq!(s.get("/?h=EXAMPLE.com.").body_str(), "exact|exact/");
    assert_eq!(s.get("/?h=a.example.com&k=1").body_str(), "sub|sub/1");
    assert_eq!(s.get("/?h=www.example.org").body_str(), "tail|tail/");
    assert_eq!(s.get("/?h=foo.test").body_str(), "test-foo-foo|test-foo-foo/");
    assert_eq!(s.get("/?h=default").body_str(), "literal|literal/");
    assert_eq!(s.get("/a.png?h=zzz").body_str(), "none|image");
    assert_eq!(s.get("/X").body_str(), "none|x");
}

#[test]
fn cached_unless_volatile() {
    let s = Server::start(
        r#"http {
            map $uri $cached { default $uri; }
            map $uri $fresh { volatile; default $uri; }
            server { listen 127.0.0.1:%%PORT%%;
                location /a { set $x "$cached $fresh"; rewrite ^ /b last; }
                location /b { return 200 "$cached $fresh"; }
            }
        }"#,
    );
    assert_eq!(s.get("/a").body_str(), "/a /b");
}
