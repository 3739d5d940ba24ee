//! End-to-end: the proxy module against a scripted std origin — URI rules,
//! the request it builds, how upstream responses are re-framed for the
//! client, `proxy_redirect`, `proxy_intercept_errors`, `X-Accel-Redirect`,
//! and the `$upstream_*` variables in the access log.

mod common;
#[path = "common/origin.rs"]
mod origin;

use std::time::Duration;

use common::{parse_head_response, parse_response, show, Response, Server};
use origin::{poll, Origin, Recorded};

const OK5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// Starts sluice with `conf`, `@P@` standing for the origin's port.
fn start(o: &Origin, conf: &str) -> Server {
    Server::start(&conf.replace("@P@", &o.port().to_string()))
}

fn get(s: &Server, path: &str) -> Response {
    s.get(path)
}

fn one(s: &Server, req: &[u8]) -> Response {
    let bytes = s.raw(req);
    let (r, rest) = parse_response(&bytes);
    assert!(rest.is_empty(), "bytes after the response: {:?}", show(rest));
    r
}

fn only_request(o: &Origin) -> Recorded {
    let rs = o.wait_requests(1);
    assert_eq!(rs.len(), 1, "{rs:?}");
    rs[0].clone()
}

// ---- 1. URI rules ----

#[test]
fn uri_part_replaces_the_matched_location_prefix() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location /a/ { proxy_pass http://127.0.0.1:@P@/b/; } } }",
    );
    let r = get(&s, "/a/x?y=1");
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    assert_eq!(only_request(&o).head.target, "/b/x?y=1");
}

#[test]
fn no_uri_part_passes_the_request_uri_as_sent() {
    let o = Origin::fixed(OK5);
    let s = start(&o, "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@; } } }");
    assert_eq!(get(&s, "/%7Efoo/a%20b/../c?x=%41&y").status, 200);
    assert_eq!(only_request(&o).head.target, "/%7Efoo/a%20b/../c?x=%41&y");
}

#[test]
fn variable_uri_request_uri() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location /v/ { proxy_pass http://127.0.0.1:@P@$request_uri; } } }",
    );
    assert_eq!(get(&s, "/v/q%41?z=1").status, 200);
    assert_eq!(only_request(&o).head.target, "/v/q%41?z=1");
}

#[test]
fn variable_host_from_set() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location /s/ { set $b 127.0.0.1:@P@; proxy_pass http://$b; } } }",
    );
    assert_eq!(get(&s, "/s/x?y").body_str(), "hello");
    let req = only_request(&o);
    assert_eq!(req.head.target, "/s/x?y");
    assert_eq!(req.head.header("Host"), Some(format!("127.0.0.1:{}", o.port()).as_str()));
}

#[test]
fn regex_location_passes_the_uri_unchanged() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location ~ ^/re/(.*)$ { proxy_pass http://127.0.0.1:@P@; } } }",
    );
    assert_eq!(get(&s, "/re/abc?q=1").status, 200);
    assert_eq!(only_request(&o).head.target, "/re/abc?q=1");
}

#[test]
fn rewrite_break_passes_the_changed_uri_with_args() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%;
            location /rw/ { rewrite ^/rw/(.*)$ /new/$1 break; proxy_pass http://127.0.0.1:@P@; } } }",
    );
    assert_eq!(get(&s, "/rw/x?y=1").status, 200);
    assert_eq!(only_request(&o).head.target, "/new/x?y=1");
}

#[test]
fn unix_socket_upstream() {
    let s = Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%; location /u/ { proxy_pass http://unix:%%DIR%%/o.sock:/x/; } } }",
    );
    let o = Origin::respond_unix(&s.dir().join("o.sock"), |_| OK5.to_vec());
    let r = get(&s, "/u/a?b");
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    let req = only_request(&o);
    assert_eq!(req.head.target, "/x/a?b");
    // nginx sends "localhost" as the Host of a unix-socket upstream.
    assert_eq!(req.head.header("Host"), Some("localhost"));
}

// ---- 2. Request headers ----

const PLAIN: &str = "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@; } } }";

#[test]
fn default_request_head() {
    let o = Origin::fixed(OK5);
    let s = start(&o, PLAIN);
    one(
        &s,
        b"GET /h HTTP/1.1\r\nHost: client.example\r\nX-Custom: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\n\
          Upgrade: foo\r\nUser-Agent: t\r\nConnection: close\r\n\r\n",
    );
    let h = only_request(&o).head;
    assert_eq!(h.raw.lines().next(), Some("GET /h HTTP/1.0"), "{}", h.raw);
    assert_eq!(h.headers[0], ("Host".into(), format!("127.0.0.1:{}", o.port())), "{}", h.raw);
    assert_eq!(h.headers[1], ("Connection".into(), "close".into()), "{}", h.raw);
    assert_eq!(h.headers_all("Connection").len(), 1, "{}", h.raw);
    assert_eq!(h.header("X-Custom"), Some("1"));
    assert_eq!(h.header("User-Agent"), Some("t"));
    for hop in ["Keep-Alive", "TE", "Upgrade"] {
        assert_eq!(h.header(hop), None, "{hop} passed: {}", h.raw);
    }
}

#[test]
fn expect_is_not_passed() {
    let o = Origin::fixed(OK5);
    let s = start(&o, PLAIN);
    let bytes = s.raw(
        b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    let all = common::parse_all(&bytes);
    assert_eq!(all.last().map(|r| r.status), Some(200), "{all:?}");
    let req = only_request(&o);
    assert_eq!(req.head.header("Expect"), None, "{}", req.head.raw);
    assert_eq!(req.body, b"abc");
}

#[test]
fn expect_100_continue_is_answered_without_a_body_too() {
    // nginx's proxy takes the request body, empty or not, through the body
    // reader, which answers the expectation first.
    let o = Origin::fixed(OK5);
    let s = start(&o, PLAIN);
    let bytes =
        s.raw(b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let all = common::parse_all(&bytes);
    assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [100, 200], "{all:?}");
    assert_eq!(only_request(&o).body, b"");
}

#[test]
fn http_version_1_1_and_set_header() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Empty \"\";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Set \"a $arg_v\"; } } }",
    );
    one(
        &s,
        b"GET /h?v=7 HTTP/1.1\r\nHost: Client.Example\r\nX-Empty: gone\r\nX-Forwarded-For: 10.0.0.1\r\n\
          X-Set: client\r\nConnection: close\r\n\r\n",
    );
    let h = only_request(&o).head;
    assert_eq!(h.raw.lines().next(), Some("GET /h?v=7 HTTP/1.1"));
    assert_eq!(h.header("Host"), Some("client.example"), "{}", h.raw);
    assert_eq!(h.header("Connection"), Some("close"));
    assert_eq!(h.header("X-Empty"), None, "{}", h.raw);
    assert_eq!(h.headers_all("X-Forwarded-For"), ["10.0.0.1, 127.0.0.1"], "{}", h.raw);
    assert_eq!(h.headers_all("X-Set"), ["a 7"], "{}", h.raw);
}

#[test]
fn pass_request_headers_off() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@;
            proxy_pass_request_headers off; } } }",
    );
    one(&s, b"GET /h HTTP/1.1\r\nHost: a\r\nX-Custom: 1\r\nCookie: c=1\r\nConnection: close\r\n\r\n");
    let h = only_request(&o).head;
    let names: Vec<&str> = h.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "Connection"], "{}", h.raw);
}

#[test]
fn pass_request_body_off() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@;
            proxy_pass_request_body off; proxy_set_header Content-Length \"\"; } } }",
    );
    let r = one(&s, b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    assert_eq!(r.status, 200);
    let req = only_request(&o);
    assert_eq!(req.head.method, "POST");
    assert_eq!(req.head.header("Content-Length"), None, "{}", req.head.raw);
    assert_eq!(req.body, b"");
}

#[test]
fn set_body_and_method() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@;
            proxy_method PUT; proxy_set_body \"name=$arg_n\"; } } }",
    );
    let r = one(&s, b"POST /p?n=v HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    assert_eq!(r.status, 200);
    let req = only_request(&o);
    assert_eq!(req.head.method, "PUT", "{}", req.head.raw);
    assert_eq!(req.head.headers_all("Content-Length"), ["6"], "{}", req.head.raw);
    assert_eq!(req.body, b"name=v");
}

// ---- 3. Responses ----

#[test]
fn content_length_response_passes_headers() {
    let o = Origin::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-O: 1\r\nContent-Type: text/x\r\n\r\nhello");
    let s = start(&o, PLAIN);
    let r = get(&s, "/");
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.header("X-O"), Some("1"));
    assert_eq!(r.header("Content-Type"), Some("text/x"));
}

const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

#[test]
fn chunked_upstream_rechunked_for_http11_client() {
    let o = Origin::fixed(CHUNKED);
    let s = start(&o, PLAIN);
    let r = get(&s, "/");
    assert_eq!(r.body_str(), "hello world");
    assert!(r.chunked, "{r:?}");
    assert_eq!(r.header("Content-Length"), None);
}

#[test]
fn chunked_upstream_close_delimited_for_http10_client() {
    let o = Origin::fixed(CHUNKED);
    let s = start(&o, PLAIN);
    let bytes = s.raw(b"GET / HTTP/1.0\r\n\r\n");
    let (r, _) = parse_response(&bytes);
    assert_eq!(r.body_str(), "hello world", "{:?}", show(&bytes));
    assert!(!r.chunked);
    assert_eq!(r.header("Transfer-Encoding"), None);
}

#[test]
fn close_delimited_and_http10_upstreams() {
    for resp in [&b"HTTP/1.1 200 OK\r\n\r\nclose-delimited"[..], b"HTTP/1.0 200 OK\r\n\r\nclose-delimited"] {
        let o = Origin::start(move |c| {
            c.read_request();
            c.write(resp);
        });
        let s = start(&o, PLAIN);
        // Keep-alive client: the response must be re-framed (chunked) and
        // the connection stay usable.
        let rs = s.raw_keepalive(&[
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        ]);
        assert_eq!(rs.len(), 2, "{rs:?}");
        for r in &rs {
            assert_eq!((r.status, r.body_str().as_str()), (200, "close-delimited"), "{r:?}");
            assert_eq!(r.version, "HTTP/1.1");
        }
    }
}

#[test]
fn early_hints_before_the_final_response_are_skipped() {
    let o = Origin::fixed(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let s = start(&o, PLAIN);
    let bytes = s.raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let (r, rest) = parse_response(&bytes);
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok"), "{:?}", show(&bytes));
    assert!(rest.is_empty());
}

#[test]
fn head_204_304_keep_the_client_connection() {
    let o = Origin::respond(|req| match req.head.target.as_str() {
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
        "/204" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        "/304" => b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n".to_vec(),
        _ => OK5.to_vec(),
    });
    let s = start(&o, PLAIN);
    let rs = s.raw_keepalive(&[
        b"HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /304 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ]);
    let st: Vec<u16> = rs.iter().map(|r| r.status).collect();
    assert_eq!(st, [200, 204, 304, 200], "{rs:?}");
    assert_eq!(rs[0].header("Content-Length"), Some("100"));
    assert_eq!(rs[3].body_str(), "hello");
    assert_eq!(o.requests()[0].head.method, "HEAD");
    for r in &rs[1..3] {
        assert!(r.body.is_empty() && !r.chunked && r.header("Transfer-Encoding").is_none(), "{r:?}");
    }
}

#[test]
fn head_response_has_no_body() {
    let o = Origin::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    let s = start(&o, PLAIN);
    let bytes = s.raw(b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let (r, rest) = parse_head_response(&bytes);
    assert_eq!(r.status, 200);
    assert!(rest.is_empty(), "body sent to HEAD: {:?}", show(rest));
}

const NOISY: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nServer: origin/1\r\n\
    X-Accel-Foo: a\r\nX-Accel-Expires: 10\r\nX-Accel-Buffering: yes\r\nX-Pad: p\r\nX-Powered-By: x\r\nX-Keep: k\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn default_hidden_headers() {
    let o = Origin::fixed(NOISY);
    let s = start(&o, PLAIN);
    let r = get(&s, "/");
    assert_eq!(r.headers_all("Server").len(), 1, "{r:?}");
    assert_ne!(r.header("Server"), Some("origin/1"));
    assert_eq!(r.headers_all("Date").len(), 1, "{r:?}");
    assert_ne!(r.header("Date"), Some("Mon, 01 Jan 2001 00:00:00 GMT"));
    // nginx hides its own X-Accel-* names, not every X-Accel- header.
    assert_eq!(r.header("X-Accel-Expires"), None);
    assert_eq!(r.header("X-Accel-Buffering"), None);
    assert_eq!(r.header("X-Accel-Foo"), Some("a"));
    assert_eq!(r.header("X-Pad"), None);
    assert_eq!(r.header("X-Powered-By"), Some("x"));
    assert_eq!(r.header("X-Keep"), Some("k"));
}

#[test]
fn hide_header_and_pass_header() {
    let o = Origin::fixed(NOISY);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:@P@;
            proxy_hide_header X-Powered-By; proxy_pass_header Server; proxy_pass_header X-Accel-Expires; } } }",
    );
    let r = get(&s, "/");
    assert_eq!(r.header("X-Powered-By"), None);
    assert_eq!(r.headers_all("Server"), ["origin/1"], "{r:?}");
    assert_eq!(r.header("X-Accel-Expires"), Some("10"));
    assert_eq!(r.header("X-Keep"), Some("k"));
}

fn assert_502_logged(resp: &'static [u8], log: &str) {
    let o = Origin::fixed(resp);
    let s = start(&o, PLAIN);
    let r = get(&s, "/");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body_str().contains("<title>502 Bad Gateway</title>"), "{}", r.body_str());
    let line = format!("{log} while reading response header from upstream");
    assert!(poll(Duration::from_secs(2), || s.error_log().contains(&line)), "no {line:?} in\n{}", s.error_log());
}

#[test]
fn duplicate_content_length_is_502() {
    assert_502_logged(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "upstream sent duplicate header line: \"Content-Length: 6\", previous value: \"Content-Length: 5\"",
    );
}

#[test]
fn content_length_with_transfer_encoding_is_502() {
    assert_502_logged(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time",
    );
}

#[test]
fn unknown_transfer_encoding_is_502() {
    assert_502_logged(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "upstream sent unknown \"Transfer-Encoding\": \"gzip, chunked\"",
    );
}

#[test]
fn client_keepalive_kept_after_proxied_responses() {
    let o = Origin::fixed(OK5);
    let s = start(&o, PLAIN);
    let rs = s.raw_keepalive(&[
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ]);
    assert_eq!(rs.len(), 3, "{rs:?}");
    assert_eq!(rs[0].header("Connection"), Some("keep-alive"));
    assert!(rs.iter().all(|r| r.body_str() == "hello"));
}

// ---- 4. proxy_redirect, intercept_errors, X-Accel-Redirect ----

fn redirect_origin() -> Origin {
    Origin::respond(|req| {
        let p = req.head.header("X-P").unwrap_or("0").to_string();
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{p}/o/next\r\nRefresh: 5; url=http://127.0.0.1:{p}/o/x\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    })
}

fn redirect_server(o: &Origin, rule: &str) -> Server {
    start(
        o,
        &format!(
            "http {{ server {{ listen 127.0.0.1:%%PORT%%; location /r/ {{ proxy_pass http://127.0.0.1:@P@/o/;
                proxy_set_header X-P @P@; {rule} }} }} }}"
        ),
    )
}

#[test]
fn proxy_redirect_default() {
    let o = redirect_origin();
    let s = redirect_server(&o, "");
    let r = one(&s, b"GET /r/a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some(format!("http://localhost:{}/r/next", s.port()).as_str()));
    assert_eq!(r.header("Refresh"), Some("5; url=/r/x"));
}

#[test]
fn proxy_redirect_off() {
    let o = redirect_origin();
    let s = redirect_server(&o, "proxy_redirect off;");
    let r = get(&s, "/r/a");
    assert_eq!(r.header("Location"), Some(format!("http://127.0.0.1:{}/o/next", o.port()).as_str()));
}

#[test]
fn proxy_redirect_custom_and_regex() {
    let o = redirect_origin();
    let s = redirect_server(&o, "proxy_redirect http://127.0.0.1:@P@/o/ http://front.example/f/;");
    let r = get(&s, "/r/a");
    assert_eq!(r.header("Location"), Some("http://front.example/f/next"));
    assert_eq!(r.header("Refresh"), Some("5; url=http://front.example/f/x"));
    drop(s);
    let s = redirect_server(&o, "proxy_redirect ~^http://[^/]+/o/(.*)$ http://rx.example/$1;");
    let r = get(&s, "/r/a");
    assert_eq!(r.header("Location"), Some("http://rx.example/next"));
}

#[test]
fn intercept_errors_with_error_page() {
    let o = Origin::fixed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 6\r\n\r\norigin");
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%;
            location = /nf.html { }
            location /ie/ { proxy_pass http://127.0.0.1:@P@; proxy_intercept_errors on; error_page 404 /nf.html; }
            location /pass/ { proxy_pass http://127.0.0.1:@P@; error_page 404 /nf.html; } } }",
    );
    s.write_file("nf.html", "custom 404\n");
    let r = get(&s, "/ie/x");
    assert_eq!((r.status, r.body_str().as_str()), (404, "custom 404\n"));
    let r = get(&s, "/pass/x");
    assert_eq!((r.status, r.body_str().as_str()), (404, "origin"));
}

#[test]
fn x_accel_redirect_to_uri_and_named_location() {
    let o = Origin::respond(|req| {
        let to = if req.head.target.starts_with("/n") { "@named" } else { "/internal/f.txt" };
        format!("HTTP/1.1 200 OK\r\nX-Accel-Redirect: {to}\r\nContent-Length: 6\r\n\r\norigin").into_bytes()
    });
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%;
            location /internal/ { internal; }
            location @named { return 200 \"named\\n\"; }
            location / { proxy_pass http://127.0.0.1:@P@; } } }",
    );
    s.write_file("internal/f.txt", "file\n");
    let r = get(&s, "/u");
    assert_eq!((r.status, r.body_str().as_str()), (200, "file\n"), "{r:?}");
    assert_eq!(r.header("X-Accel-Redirect"), None);
    let r = get(&s, "/n");
    assert_eq!((r.status, r.body_str().as_str()), (200, "named\n"), "{r:?}");
}

// ---- 10. $upstream_* variables ----

fn is_secs(v: &str) -> bool {
    let (a, b) = v.split_once('.').unwrap_or(("", ""));
    !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.len() == 3 && b.bytes().all(|c| c.is_ascii_digit())
}

fn log_line(s: &Server) -> Vec<String> {
    let path = s.dir().join("up.log");
    assert!(
        poll(Duration::from_secs(3), || std::fs::read_to_string(&path).is_ok_and(|t| t.ends_with('\n'))),
        "no access log line"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines().next().unwrap().split('|').map(str::to_string).collect()
}

const LOGFMT: &str = "log_format up '$upstream_addr|$upstream_status|$upstream_response_time|\
    $upstream_connect_time|$upstream_header_time|$upstream_response_length';
    access_log %%DIR%%/up.log up;";

#[test]
fn upstream_variables_one_try() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        &format!("http {{ {LOGFMT} server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://127.0.0.1:@P@; }} }} }}"),
    );
    assert_eq!(get(&s, "/").status, 200);
    let f = log_line(&s);
    assert_eq!(f[0], format!("127.0.0.1:{}", o.port()));
    assert_eq!(f[1], "200");
    assert!(f[2..5].iter().all(|v| is_secs(v)), "{f:?}");
    assert_eq!(f[5], "5");
}

#[test]
fn upstream_variables_two_tries() {
    let bad = Origin::fixed(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad");
    let good = Origin::fixed(OK5);
    let s = Server::start(&format!(
        "http {{ {LOGFMT} upstream two {{ server 127.0.0.1:{}; server 127.0.0.1:{}; }}
        server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://two; proxy_next_upstream http_502; }} }} }}",
        bad.port(),
        good.port()
    ));
    assert_eq!(get(&s, "/").body_str(), "hello");
    let f = log_line(&s);
    assert_eq!(f[0], format!("127.0.0.1:{}, 127.0.0.1:{}", bad.port(), good.port()));
    assert_eq!(f[1], "502, 200");
    for v in &f[2..5] {
        let parts: Vec<&str> = v.split(", ").collect();
        assert!(parts.len() == 2 && parts.iter().all(|p| is_secs(p)), "{f:?}");
    }
    // A try ended by its status (next upstream) reads no body: nginx logs 0.
    assert_eq!(f[5], "0, 5");
}

#[test]
fn named_location_passes_the_original_uri() {
    let o = Origin::fixed(OK5);
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%;
            location / { try_files /nonexistent @be; }
            location @be { proxy_pass http://127.0.0.1:@P@; } } }",
    );
    assert_eq!(get(&s, "/n/x?y=1").body_str(), "hello");
    assert_eq!(only_request(&o).head.target, "/n/x?y=1");
}

#[test]
fn ignore_headers_x_accel_redirect() {
    let o = Origin::fixed(b"HTTP/1.1 200 OK\r\nX-Accel-Redirect: /internal/f.txt\r\nContent-Length: 6\r\n\r\norigin");
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%;
            location /internal/ { internal; }
            location / { proxy_pass http://127.0.0.1:@P@; proxy_ignore_headers X-Accel-Redirect; } } }",
    );
    s.write_file("internal/f.txt", "file\n");
    let r = get(&s, "/u");
    assert_eq!((r.status, r.body_str().as_str()), (200, "origin"), "{r:?}");
    // Ignored, but still hidden from the client as nginx does.
    assert_eq!(r.header("X-Accel-Redirect"), None);
}

#[test]
fn x_accel_limit_rate_survives_a_satisfy_any_location() {
    // The rate the origin set must hold in the location X-Accel-Redirect
    // leads to, also when, under `satisfy any`, one access check fails and
    // another passes there (the failed check's status was once kept where
    // the rate was, and replaced it).
    let o = Origin::fixed(
        b"HTTP/1.1 200 OK\r\nX-Accel-Redirect: /internal/f.txt\r\nX-Accel-Limit-Rate: 2000\r\nContent-Length: 6\r\n\r\norigin",
    );
    let s = start(
        &o,
        "http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%;
            location /internal/ {
                internal;
                satisfy any;
                deny all;
                auth_basic \"x\";
                auth_basic_user_file %%DIR%%/htpasswd;
            }
            location / { proxy_pass http://127.0.0.1:@P@; } } }",
    );
    s.write_file("htpasswd", "joe:{PLAIN}secret\n");
    s.write_file("internal/f.txt", vec![b'r'; 6000]);
    let began = std::time::Instant::now();
    // joe:secret
    let r =
        one(&s, b"GET /u HTTP/1.1\r\nHost: x\r\nAuthorization: Basic am9lOnNlY3JldA==\r\nConnection: close\r\n\r\n");
    let took = began.elapsed();
    assert_eq!((r.status, r.body.len()), (200, 6000), "{r:?}");
    // 2000 bytes go at once, then 2000 a second: about two seconds.
    assert!(took >= std::time::Duration::from_millis(1500), "sent in {took:?}: the rate was lost");
}

/// A server proxying to an origin that answers every request with this
/// `Set-Cookie`, `directives` in its location `/` (and `nested` inside it).
fn set_cookie_through(set_cookie: &str, directives: &str, nested: &str) -> (Origin, Server) {
    let head = format!("HTTP/1.1 200 OK\r\nSet-Cookie: {set_cookie}\r\nContent-Length: 0\r\n\r\n");
    let o = Origin::fixed(head.as_bytes());
    let conf = format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://127.0.0.1:@P@; {directives} {nested} }} }} }}"
    );
    let s = start(&o, &conf);
    (o, s)
}

#[test]
fn upstream_cookie_reads_set_cookie_as_nginx_does() {
    // The first Set-Cookie that starts with the name; spaces (not tabs)
    // around `=`; the value up to `;`.
    for (set_cookie, want) in [
        ("tc = content", Some("content")),
        ("tc=con  tent; Domain=example.com", Some("con  tent")),
        ("tc==;abc", Some("=")),
        ("tc=first,tc=second", Some("first,tc=second")),
        ("tc\t=\tcontent;", None),
        ("tc= ;", None),
        ("=tc=content", None),
        ("tcx=1", None),
    ] {
        let (_o, s) = set_cookie_through(set_cookie, "add_header X-Cookie $upstream_cookie_tc;", "");
        assert_eq!(get(&s, "/").header("X-Cookie"), want, "{set_cookie:?}");
    }
}

#[test]
fn cookie_domain_and_path_are_rewritten() {
    for (set_cookie, want) in [
        ("a=1; Domain=Backend.Internal; Path=/app/x", "a=1; Domain=example.com; Path=/x"),
        ("a=1;Domain=.backend.internal", "a=1; Domain=.example.com"),
        ("a=1; path=/old/deep", "a=1; path=/new/deep"),
        ("a=1; Path=/APP/x", "a=1; Path=/APP/x"),
        ("a=1; Domain=other.org; Secure", "a=1; Domain=other.org; Secure"),
    ] {
        let (_o, s) = set_cookie_through(
            set_cookie,
            "proxy_cookie_domain backend.internal .example.com;
                proxy_cookie_path /app/ /;
                proxy_cookie_path ~^/old/(.*)$ /new/$1;",
            "location /off/ { proxy_pass http://127.0.0.1:@P@; proxy_cookie_path off; proxy_cookie_domain off; }",
        );
        assert_eq!(get(&s, "/").header("Set-Cookie"), Some(want), "{set_cookie:?}");
        // `off` at a level: passed as it came.
        assert_eq!(get(&s, "/off/").header("Set-Cookie"), Some(set_cookie), "{set_cookie:?}");
    }
}

#[test]
fn cookie_flags_are_set_and_removed() {
    for (set_cookie, want) in [
        ("sess=1; Path=/", "sess=1; Path=/; Secure; HttpOnly; SameSite=Lax"),
        ("sess=1; secure; SameSite=None", "sess=1; secure; SameSite=Lax; HttpOnly"),
        ("track=1; Secure; HttpOnly; SameSite=Strict", "track=1"),
        ("other=1; Secure", "other=1; Secure"),
    ] {
        let (_o, s) = set_cookie_through(
            set_cookie,
            "proxy_cookie_flags SESS secure httponly samesite=lax;
                proxy_cookie_flags ~^tr nosecure nohttponly nosamesite;",
            "",
        );
        assert_eq!(get(&s, "/").header("Set-Cookie"), Some(want), "{set_cookie:?}");
    }
    let e = Server::try_start(
        "http { server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://127.0.0.1:9; proxy_cookie_flags a securely; } } }",
    )
    .expect_err("bad flag");
    assert!(e.contains("invalid flag \"securely\""), "{e}");
}
