//! End-to-end: location and server selection, `error_page`, `internal`,
//! redirects built by `return`, and `add_header` / `add_trailer`, checked
//! against what nginx sends (run with `SLUICE_TEST_BIN` naming an nginx).

mod common;

use common::{parse_response, show, Conn, Response, Server};

/// `GET path` with this Host on a new connection to `port`, closing.
fn get_on(port: u16, host: &str, path: &str) -> Response {
    let mut c = Conn::open(port);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes());
    only(&c.read_to_end())
}

fn only(bytes: &[u8]) -> Response {
    let (r, rest) = parse_response(bytes);
    assert!(rest.is_empty(), "bytes after the response: {:?}", show(rest));
    r
}

/// The built-in page nginx sends for `status reason`, signed like `r`.
fn builtin_page(r: &Response, status: u16, reason: &str) -> String {
    let sig = r.header("Server").expect("Server header");
    // The one page whose title is not the status line's reason: nginx's
    // 302 says "Moved Temporarily" in the line but "Found" on the page.
    let title = match status {
        302 => "302 Found".to_string(),
        _ => format!("{status} {reason}"),
    };
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{title}</h1></center>\r\n<hr><center>{sig}</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

fn assert_builtin(r: &Response, status: u16, reason: &str) {
    assert_eq!((r.status, r.reason.as_str()), (status, reason), "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.body_str(), builtin_page(r, status, reason));
}

const LOCATIONS: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    location = /exact { return 200 "exact\n"; }
    location / { return 200 "root\n"; }
    location /pre { return 200 "pre\n"; }
    location /prefix/ { return 200 "prefix-dir\n"; }
    location /prefix/longer { return 200 "longer\n"; }
    location ^~ /static/ { return 200 "static\n"; }
    location ~ \.php$ { return 200 "php\n"; }
    location ~ ^/re/(\w+)/(\d+)$ { return 200 "first $1 $2\n"; }
    location ~ ^/re/ { return 200 "second\n"; }
    location ~* \.jpg$ { return 200 "jpg\n"; }
    location /nest/ {
        return 200 "nest\n";
        location /nest/inner/ { return 200 "inner\n"; }
        location ~ \.txt$ { return 200 "nest-regex\n"; }
    }
} }"#;

#[test]
fn location_selection() {
    let s = Server::start(LOCATIONS);
    let cases = [
        ("/exact", "exact"),
        ("/exact/", "root"),
        ("/exactly", "root"),
        ("/", "root"),
        ("/other", "root"),
        ("/pre", "pre"),
        ("/preX", "pre"),
        ("/prefix/x", "prefix-dir"),
        ("/prefix/longer/x", "longer"),
        ("/prefix/longerer", "longer"),
        ("/static/a.php", "static"),
        ("/a.php", "php"),
        ("/pre/a.php", "php"),
        ("/a.PHP", "root"),
        ("/re/abc/42", "first abc 42"),
        ("/re/abc", "second"),
        ("/IMG.JPG", "jpg"),
        ("/pre/i.JpG", "jpg"),
        ("/nest/", "nest"),
        ("/nest/x", "nest"),
        ("/nest/inner/x", "inner"),
        ("/nest/inner/a.txt", "nest-regex"),
        ("/nest/a.txt", "nest-regex"),
        ("/nest/inner/a.php", "php"),
        ("/a.txt", "root"),
        ("/exact?x=1", "exact"),
        ("/%65xact", "exact"),
        ("//exact", "exact"),
    ];
    for (path, want) in cases {
        let r = get_on(s.port(), "localhost", path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body_str(), format!("{want}\n"), "{path}");
    }
}

const ERRORS: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    error_page 404 /srv404;
    location /srv404 { return 200 "server page $uri\n"; }
    location /inherit { return 404; }
    location /text404 { return 404 "own text\n"; }
    location /named { error_page 404 = @fallback; return 404; }
    location @fallback { return 200 "fallback $uri\n"; }
    location /int { internal; return 200 "internal $uri\n"; }
    location /to-int { error_page 404 /int; return 404; }
    location /to-int-eq { error_page 404 = /int; return 404; }
    location /to-int-200 { error_page 404 =200 /int; return 404; }
    location /to-int-503 { error_page 404 =503 /int; return 404; }
    location /url { error_page 404 http://example.com/gone; return 404; }
    location /url301 { error_page 404 =301 http://example.com/moved; return 404; }
    location /loop { error_page 404 /loop2; return 404; }
    location /loop2 { error_page 404 /loop; return 404; }
    location /five { error_page 500 502 /int; return 502; }
    location /other { error_page 403 /int; return 404; }
} }"#;

#[test]
fn error_page_internal_redirects() {
    let s = Server::start(ERRORS);
    let port = s.port();
    let cases: [(&str, u16, &str); 7] = [
        // The page's content with the original status.
        ("/inherit", 404, "server page /srv404\n"),
        ("/text404", 404, "own text\n"),
        ("/named", 200, "fallback /named\n"),
        ("/to-int", 404, "internal /int\n"),
        ("/to-int-eq", 200, "internal /int\n"),
        ("/to-int-200", 200, "internal /int\n"),
        ("/to-int-503", 503, "internal /int\n"),
    ];
    for (path, status, body) in cases {
        let r = get_on(port, "localhost", path);
        assert_eq!((r.status, r.body_str().as_str()), (status, body), "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/plain"), "{path}");
    }
    let r = get_on(port, "localhost", "/five");
    assert_eq!((r.status, r.body_str().as_str()), (502, "internal /int\n"));
    assert_eq!(r.reason, "Bad Gateway");
}

#[test]
fn internal_location_is_404_from_outside() {
    let s = Server::start(ERRORS);
    // 404, whose error_page (the server's) is then used.
    let r = get_on(s.port(), "localhost", "/int");
    assert_eq!((r.status, r.body_str().as_str()), (404, "server page /srv404\n"));
    let r = get_on(s.port(), "localhost", "/int/deeper");
    assert_eq!(r.status, 404);
}

#[test]
fn error_page_loop_ends_with_the_builtin_page() {
    let s = Server::start(ERRORS);
    // Without recursive_error_pages a second error uses the built-in page.
    let r = get_on(s.port(), "localhost", "/loop");
    assert_builtin(&r, 404, "Not Found");
    // A location with its own error_page inherits none of the server's,
    // even for a status its own lines do not list.
    let r = get_on(s.port(), "localhost", "/other");
    assert_builtin(&r, 404, "Not Found");
}

#[test]
fn error_page_to_a_url_redirects() {
    let s = Server::start(ERRORS);
    let r = get_on(s.port(), "localhost", "/url");
    assert_builtin(&r, 302, "Moved Temporarily");
    assert_eq!(r.header("Location"), Some("http://example.com/gone"));
    let r = get_on(s.port(), "localhost", "/url301");
    assert_builtin(&r, 301, "Moved Permanently");
    assert_eq!(r.header("Location"), Some("http://example.com/moved"));
}

const SERVERS: &str = r#"http {
    server { listen 127.0.0.1:%%PORT%%; server_name first.test; return 200 "first $host\n"; }
    server { listen 127.0.0.1:%%PORT%% default_server; server_name marked.test;
             return 200 "default $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name exact.example.com;
             return 200 "exact $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name *.example.com; return 200 "wild $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name *.deep.example.com;
             return 200 "deep $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name .dot.test; return 200 "dot $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name www.trail.*; return 200 "trail $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name *.trail.org; return 200 "org $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name ~^(?<n>\w+)\.re\.test$;
             return 200 "regex $host\n"; }
    server { listen 127.0.0.1:%%PORT%%; server_name ~^www\.; return 200 "www-regex $host\n"; }
}"#;

#[test]
fn server_selection_by_host() {
    let s = Server::start(SERVERS);
    let cases = [
        ("first.test", "first first.test"),
        ("marked.test", "default marked.test"),
        ("unknown.test", "default unknown.test"),
        ("exact.example.com", "exact exact.example.com"),
        ("a.example.com", "wild a.example.com"),
        ("a.b.example.com", "wild a.b.example.com"),
        ("example.com", "default example.com"),
        ("x.deep.example.com", "deep x.deep.example.com"),
        ("dot.test", "dot dot.test"),
        ("a.b.dot.test", "dot a.b.dot.test"),
        ("www.trail.net", "trail www.trail.net"),
        ("www.trail.co.uk", "trail www.trail.co.uk"),
        ("www.trail.org", "org www.trail.org"),
        ("foo.re.test", "regex foo.re.test"),
        ("foo.bar.re.test", "default foo.bar.re.test"),
        ("www.any.test", "www-regex www.any.test"),
        // Case, port and a trailing dot do not matter; $host is normalized.
        ("EXACT.Example.COM", "exact exact.example.com"),
        ("exact.example.com:8080", "exact exact.example.com"),
        ("exact.example.com.", "exact exact.example.com"),
        ("A.Example.Com.:81", "wild a.example.com"),
    ];
    for (host, want) in cases {
        let r = get_on(s.port(), host, "/");
        assert_eq!(r.status, 200, "Host: {host}");
        assert_eq!(r.body_str(), format!("{want}\n"), "Host: {host}");
    }
}

#[test]
fn absolute_uri_wins_over_host_and_no_host_uses_the_default() {
    let s = Server::start(SERVERS);
    let bytes = s.raw(b"GET http://Exact.Example.com:99/p?q HTTP/1.1\r\nHost: first.test\r\nConnection: close\r\n\r\n");
    assert_eq!(only(&bytes).body_str(), "exact exact.example.com\n");
    // HTTP/1.0 without Host: the default server; $host is its name.
    let r = only(&s.raw(b"GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(r.body_str(), "default marked.test\n");
}

#[test]
fn invalid_host_is_400() {
    let s = Server::start(SERVERS);
    for host in ["a/b", "..", "a..b", "x/../y", "."] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let r = only(&s.raw(req.as_bytes()));
        assert_builtin(&r, 400, "Bad Request");
        assert_eq!(r.header("Connection"), Some("close"), "Host: {host}");
    }
}

#[test]
fn two_ports_have_their_own_servers() {
    let s = Server::start(
        r#"http {
        server { listen 127.0.0.1:%%PORT%%; server_name a.test; return 200 "A\n"; }
        server { listen 127.0.0.1:%%PORT%%; listen 127.0.0.1:%%PORT2%%; server_name b.test;
                 return 200 "B\n"; }
        server { listen 127.0.0.1:%%PORT2%%; server_name a.test; return 200 "C\n"; }
    }"#,
    );
    let (p1, p2) = (s.port(), s.port2());
    let cases = [
        (p1, "a.test", "A"),
        (p1, "b.test", "B"),
        (p1, "zzz.test", "A"),
        (p2, "a.test", "C"),
        (p2, "b.test", "B"),
        (p2, "zzz.test", "B"),
    ];
    for (port, host, want) in cases {
        let r = get_on(port, host, "/");
        assert_eq!(r.body_str(), format!("{want}\n"), "port {port}, Host: {host}");
    }
}

const REDIRECTS: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name canon.test alias.test;
    location /r { return 301 /x; }
    location /args { return 307 /x?$args; }
    location /full { return 302 http://else.test/y; }
    location /url { return http://u.test/; }
    location /noport { port_in_redirect off; return 301 /x; }
    location /sn { server_name_in_redirect on; return 301 /x; }
    location /rel { absolute_redirect off; return 308 /x; }
} }"#;

#[test]
fn return_redirects_are_made_absolute() {
    let s = Server::start(REDIRECTS);
    let port = s.port();
    let cases: [(&str, u16, &str, String); 7] = [
        ("/r", 301, "Moved Permanently", format!("http://alias.test:{port}/x")),
        ("/args?a=1", 307, "Temporary Redirect", format!("http://alias.test:{port}/x?a=1")),
        ("/full", 302, "Moved Temporarily", "http://else.test/y".to_string()),
        ("/url", 302, "Moved Temporarily", "http://u.test/".to_string()),
        ("/noport", 301, "Moved Permanently", "http://alias.test/x".to_string()),
        ("/sn", 301, "Moved Permanently", format!("http://canon.test:{port}/x")),
        ("/rel", 308, "Permanent Redirect", "/x".to_string()),
    ];
    for (path, status, reason, location) in cases {
        let r = get_on(port, "Alias.Test", path);
        assert_builtin(&r, status, reason);
        assert_eq!(r.header("Location"), Some(location.as_str()), "{path}");
    }
    // No Host: the address the connection came in on.
    let r = only(&s.raw(b"GET /r HTTP/1.0\r\n\r\n"));
    let want = format!("http://127.0.0.1:{port}/x");
    assert_eq!(r.header("Location"), Some(want.as_str()));
}

#[test]
fn directory_and_location_redirects_escape_the_uri() {
    // The URI is decoded; in Location it goes escaped as nginx escapes a
    // path (NGX_ESCAPE_URI): `/dir%20sp` -> `/dir%20sp/`, args as sent.
    let s = Server::start(
        r##"http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/www; absolute_redirect off;
            location / { }
            location "/auto sp/" { proxy_pass http://127.0.0.1:9; }
            location '/q "#%<>?\\^`{|}/' { proxy_pass http://127.0.0.1:9; } } }"##,
    );
    s.write_file("www/dir sp/index.html", "x");
    let port = s.port();
    let cases = [
        ("/dir%20sp", "/dir%20sp/"),
        ("/dir%20sp?a=b%20c", "/dir%20sp/?a=b%20c"),
        ("/auto%20sp", "/auto%20sp/"),
        ("/auto%20sp?a=b", "/auto%20sp/?a=b"),
        ("/q%20%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D", "/q%20%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D/"),
    ];
    for (path, location) in cases {
        let r = get_on(port, "a", path);
        assert_eq!((r.status, r.header("Location")), (301, Some(location)), "{path}");
    }
}

#[test]
fn header_variables_join_fields_that_come_several_times() {
    // As nginx (1.23 on): every field of the name, in order, ", "-joined
    // (a request's Cookie fields with "; ").
    let s = Server::start(
        r#"http { server { listen 127.0.0.1:%%PORT%%;
            location /s {
                add_header Foo a; add_header Foo b; add_header Cache-Control c1; add_header Cache-Control c2;
                add_header X-Foo $sent_http_foo; add_header X-CC $sent_http_cache_control;
                return 204;
            }
            location /t { add_trailer T a; add_trailer T b; add_trailer X-T $sent_trailer_t; return 200 "x"; }
            location /in { return 200 "[$content_type] [$http_via] [$http_cookie]\n"; }
            location /u { add_header X-Up $upstream_http_bar; proxy_pass http://127.0.0.1:%%PORT%%/backend; }
            location /backend { add_header Bar a; add_header Bar b; return 204; } } }"#,
    );
    let p = s.port();
    let r = get_on(p, "a", "/s");
    assert_eq!((r.header("X-Foo"), r.header("X-CC")), (Some("a, b"), Some("c1, c2")), "{r:?}");
    let r = get_on(p, "a", "/u");
    assert_eq!(r.header("X-Up"), Some("a, b"), "{r:?}");
    let r = only(&s.raw(b"GET /t HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.trailer("X-T"), Some("a, b"), "{r:?}");
    let r = only(&s.raw(
        b"GET /in HTTP/1.0\r\nContent-Type: x\r\nContent-Type: y\r\nVia: 1\r\nVia: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
    ));
    assert_eq!(r.body_str(), "[x, y] [1, 2] [a=1; b=2]\n");
}

const HEADERS: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    add_header X-Srv s;
    location /ok { return 200 ok; }
    location /nf { return 404; }
    location /nf-text { return 404 "gone"; }
    location /nf-always { add_header X-Always a always; add_header X-Plain p; return 404; }
    location /own { add_header X-Own o; return 200 own; }
    location /redir { return 302 /x; }
    location /empty { add_header X-Empty $http_x_none; add_header X-Var "v=$uri"; return 200 e; }
    location /multi { add_header X-M 1; add_header X-M 2; return 204; }
    location /trailer { add_trailer X-T "t-$uri"; add_trailer X-U u; return 200 "body"; }
    location /trailer-nf { add_trailer X-T t; return 404 "nf"; }
    location /trailer-always { add_trailer X-T t always; return 404 "nf"; }
} }"#;

#[test]
fn add_header_depends_on_status_and_always() {
    let s = Server::start(HEADERS);
    let p = s.port();
    let r = get_on(p, "localhost", "/ok");
    assert_eq!(r.header("X-Srv"), Some("s"));
    let r = get_on(p, "localhost", "/nf");
    assert_eq!(r.header("X-Srv"), None);
    assert_builtin(&r, 404, "Not Found");
    let r = get_on(p, "localhost", "/nf-text");
    assert_eq!((r.status, r.header("X-Srv")), (404, None));
    let r = get_on(p, "localhost", "/nf-always");
    assert_eq!(r.header("X-Always"), Some("a"));
    assert_eq!(r.header("X-Plain"), None);
    assert_eq!(r.header("X-Srv"), None, "own add_header replaces the server's");
    let r = get_on(p, "localhost", "/redir");
    assert_eq!((r.status, r.header("X-Srv")), (302, Some("s")));
    let r = get_on(p, "localhost", "/multi");
    assert_eq!(r.status, 204);
    assert_eq!(r.headers_all("X-M"), ["1", "2"]);
}

#[test]
fn add_header_inheritance_and_values() {
    let s = Server::start(HEADERS);
    let r = get_on(s.port(), "localhost", "/own");
    assert_eq!(r.header("X-Own"), Some("o"));
    assert_eq!(r.header("X-Srv"), None);
    let r = get_on(s.port(), "localhost", "/empty");
    assert!(!r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("X-Empty")), "empty value sent: {:?}", r.headers);
    assert_eq!(r.header("X-Var"), Some("v=/empty"));
    // Added headers come after the standard ones.
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Server", "Date", "Content-Type", "Content-Length", "Connection", "X-Var"]);
}

#[test]
fn add_trailer_forces_chunked_on_http11() {
    let s = Server::start(HEADERS);
    let bytes = s.raw(b"GET /trailer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = only(&bytes);
    assert!(r.chunked, "{:?}", show(&bytes));
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert!(bytes.ends_with(b"\r\n\r\n4\r\nbody\r\n0\r\nX-T: t-/trailer\r\nX-U: u\r\n\r\n"), "{:?}", show(&bytes));
    // HTTP/1.0 cannot carry trailers: plain Content-Length.
    let bytes = s.raw(b"GET /trailer HTTP/1.0\r\n\r\n");
    let r = only(&bytes);
    assert!(!r.chunked);
    assert_eq!(r.header("Content-Length"), Some("4"));
    assert_eq!(r.body_str(), "body");
}

#[test]
fn add_trailer_depends_on_status_and_always() {
    let s = Server::start(HEADERS);
    let r = get_on(s.port(), "localhost", "/trailer-nf");
    assert_eq!((r.status, r.body_str().as_str()), (404, "nf"));
    assert!(r.trailers.is_empty(), "{:?}", r.trailers);
    let r = get_on(s.port(), "localhost", "/trailer-always");
    assert_eq!((r.status, r.body_str().as_str()), (404, "nf"));
    assert!(r.chunked);
    assert_eq!(r.trailers, [("X-T".to_string(), "t".to_string())]);
}

/// A location nested in an `alias` location keeps the alias (and what it
/// replaces), as nginx's merge does; a regex location's alias is the whole
/// path.
#[test]
fn nested_locations_inherit_alias() {
    let s = Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/root;
            location /a/ { alias %%DIR%%/data/;
                location /a/sub/ { }
                location ~ \\.txt$ { } }
            location ~ ^/r/(.*)$ { alias %%DIR%%/data/$1; } } }",
    );
    s.write_file("data/top.html", "top\n");
    s.write_file("data/sub/f.html", "nested\n");
    s.write_file("data/sub/t.txt", "regex nested\n");
    s.write_file("root/a/sub/f.html", "wrong: root\n");
    for (uri, body) in [
        ("/a/top.html", "top\n"),
        ("/a/sub/f.html", "nested\n"),
        ("/a/sub/t.txt", "regex nested\n"),
        ("/r/sub/f.html", "nested\n"),
    ] {
        let r = s.get(uri);
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(r.body, body.as_bytes(), "{uri}");
    }
}

/// An error page answers with the error's status whatever status its own
/// location produced (nginx's send_header applies it), unless `=code` or
/// `=` says otherwise.
#[test]
fn error_page_status_overrides_the_page_location_s() {
    let s = Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%;
            location /missing { error_page 404 /page; return 404; }
            location /eq { error_page 404 = /page; return 404; }
            location /code { error_page 404 =410 /page; return 404; }
            location = /page { return 201 \"page body\"; } } }",
    );
    let r = s.get("/missing");
    assert_eq!((r.status, &r.body[..]), (404, &b"page body"[..]));
    let r = s.get("/eq");
    assert_eq!((r.status, &r.body[..]), (201, &b"page body"[..]));
    let r = s.get("/code");
    assert_eq!((r.status, &r.body[..]), (410, &b"page body"[..]));
}
