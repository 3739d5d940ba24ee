//! End-to-end: the rewrite module — `rewrite` flags and arguments, `if`
//! switching the request to its block's confs, `set`, `break`,
//! `rewrite_log`, and the phases they run in.

mod common;

use common::Server;

#[test]
fn rewrite_flags_and_arguments() {
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%;
            rewrite ^/srv/(.*)$ /dst/$1;
            location /a { rewrite ^/a/(?<rest>.*)$ /dst/$rest?x=$1 last; return 500; }
            location /b { rewrite ^ /dst/b? last; }
            location /c { rewrite ^ /dst/c; rewrite ^/dst/(.*)$ /dst/twice-$1; }
            location /brk { root %%DIR%%; rewrite ^ /brk-file break; return 500; }
            location /ext { rewrite ^ http://example.com/x?c=d; }
            location /perm { rewrite ^/perm(.*)$ /new$1 permanent; }
            location /empty { rewrite ^ $arg_none; }
            location /loop { rewrite ^ /loop last; }
            location /dst/ { return 200 "uri:$uri args:$args"; }
        } }"#,
    );
    assert_eq!(s.get("/a/x/y?q=1").body_str(), "uri:/dst/x/y args:x=x/y&q=1");
    assert_eq!(s.get("/b?q=1").body_str(), "uri:/dst/b args:");
    assert_eq!(s.get("/c?q=1").body_str(), "uri:/dst/twice-c args:q=1");
    assert_eq!(s.get("/srv/z").body_str(), "uri:/dst/z args:");
    s.write_file("brk-file", "served from /brk");
    assert_eq!(s.get("/brk").body_str(), "served from /brk");
    let r = s.get("/ext?a=b");
    assert_eq!((r.status, r.header("Location")), (302, Some("http://example.com/x?c=d&a=b")));
    let r = s.get("/perm/p?a=b");
    assert_eq!(r.status, 301);
    assert!(r.header("Location").unwrap().ends_with("/new/p?a=b"), "{r:?}");
    assert_eq!(s.get("/empty").status, 500);
    assert_eq!(s.get("/loop").status, 500);
    assert!(s.error_log().contains("rewrite or internal redirection cycle"));
    assert!(s.error_log().contains("the rewritten URI has a zero length"));
}

#[test]
fn if_blocks_switch_the_location_conf() {
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%;
            if ($arg_srv) { return 418; }
            location / {
                root %%DIR%%/one;
                if ($arg_two) { root %%DIR%%/two; add_header X-If yes; }
                if ($arg_a = 1) { return 200 "eq"; }
                if ($arg_a ~* ^(?<w>x+)(y)$) { return 200 "re $w $2"; }
                if (!-e %%DIR%%/one/$arg_f) { return 404 "no $arg_f"; }
            }
        } }"#,
    );
    std::fs::create_dir_all(s.dir().join("one")).unwrap();
    std::fs::create_dir_all(s.dir().join("two")).unwrap();
    s.write_file("one/f.txt", "first");
    s.write_file("two/f.txt", "second");
    assert_eq!(s.get("/f.txt?f=f.txt").body_str(), "first");
    let r = s.get("/f.txt?two=1&f=f.txt");
    assert_eq!((r.body_str().as_str(), r.header("X-If")), ("second", Some("yes")));
    assert_eq!(s.get("/f.txt?two=0&f=f.txt").body_str(), "first");
    assert_eq!(s.get("/?a=1").body_str(), "eq");
    assert_eq!(s.get("/?a=XXy").body_str(), "re XX y");
    assert_eq!(s.get("/?f=nope").body_str(), "no nope");
    assert_eq!(s.get("/?srv=1").status, 418);
}

#[test]
fn set_variables_and_logs() {
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%;
            rewrite_log on;
            location /set { set $who "u=$uri"; set $n 1; if ($n) { set $who "$who!"; } return 200 "$who"; }
            location /unset { return 200 "[$later]"; }
            location /quiet { uninitialized_variable_warn off; return 200 "[$later]"; }
            location /never { set $later x; }
            location /log { rewrite ^/log(.*)$ /set$1; break; }
        } }"#,
    );
    assert_eq!(s.get("/set").body_str(), "u=/set!");
    assert_eq!(s.get("/unset").body_str(), "[]");
    assert!(s.error_log().contains("using uninitialized \"later\" variable"));
    assert_eq!(s.get("/quiet").body_str(), "[]");
    assert_eq!(s.error_log().matches("using uninitialized").count(), 1);
    assert_eq!(s.get("/log").status, 404);
    let log = s.error_log();
    assert!(log.contains("\"^/log(.*)$\" matches \"/log\""), "{log}");
    assert!(log.contains("rewritten data: \"/set\", args: \"\""), "{log}");
}

#[test]
fn set_changes_args_and_limit_rate() {
    // $args and $limit_rate are built-ins `set` may change, as in nginx:
    // the request's arguments, and the response's rate.
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%;
            location /args { set $args "a=1&$args"; return 200 "[$args][$arg_a][$arg_b][$query_string][$is_args]\n"; }
            location /rate { set $limit_rate $arg_l; add_header X-Rate $limit_rate; return 200 "$arg_body"; }
            location /conf { limit_rate 3k; add_header X-Rate $limit_rate; return 200 ok; }
        } }"#,
    );
    assert_eq!(s.get("/args?b=2").body_str(), "[a=1&b=2][1][2][a=1&b=2][?]\n");
    let r = s.get("/rate?l=40k");
    assert_eq!(r.header("X-Rate"), Some("40960"));
    assert_eq!(s.get("/conf").header("X-Rate"), Some("3072"));
    // Not a size: logged, and the rate stays as it was (none).
    assert_eq!(s.get("/rate?l=fast").header("X-Rate"), Some("0"));
    assert!(s.error_log().contains("invalid $limit_rate \"fast\""), "{}", s.error_log());
    // The rate holds: 1000 bytes a second, 2500 bytes (1000 at once).
    let body = "x".repeat(2500);
    let began = std::time::Instant::now();
    let r = s.get(&format!("/rate?l=1000&body={body}"));
    assert_eq!(r.body_str(), body);
    assert!(began.elapsed() >= std::time::Duration::from_millis(1200), "sent in {:?}", began.elapsed());
}
