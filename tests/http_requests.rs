//! End-to-end: request heads, keep-alive, pipelining, and the protocol
//! errors a client can provoke, checked byte by byte against what nginx
//! sends (run with `SLUICE_TEST_BIN` naming an nginx to confirm).

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{parse_all, parse_head_response, parse_response, show, Response, Server};

/// The product name in `Server` and in error page footers.
fn product() -> &'static str {
    if common::bin().contains("nginx") {
        "nginx"
    } else {
        "sluice"
    }
}

/// The built-in error page nginx sends for `title` (e.g. "404 Not Found"),
/// signed `sig` (the `Server` header's value).
fn error_page(title: &str, sig: &str) -> String {
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{title}</h1></center>\r\n<hr><center>{sig}</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

/// Asserts `r` is a complete built-in error page with this status.
fn assert_error_page(r: &Response, status: u16, reason: &str) {
    assert_eq!((r.status, r.reason.as_str()), (status, reason), "{r:?}");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    let sig = r.header("Server").expect("Server header");
    let want = error_page(&format!("{status} {reason}"), sig);
    assert_eq!(r.body_str(), want);
    assert_eq!(r.header("Content-Length"), Some(want.len().to_string().as_str()));
}

/// One response, the only thing before the server closes.
fn only(bytes: &[u8]) -> Response {
    let (r, rest) = parse_response(bytes);
    assert!(rest.is_empty(), "bytes after the response: {:?}", show(rest));
    r
}

const ECHO: &str = "http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    location / { return 200 \"uri=$uri args=$args host=$host x=$http_x_test\\n\"; }
    location /keep2 { keepalive_requests 2; return 200 \"k\"; }
} }";

#[test]
fn keepalive_serves_several_requests_on_one_connection() {
    let s = Server::start(ECHO);
    let req = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: localhost\r\nX-Test: {p}\r\n\r\n");
    let (a, b, c) = (req("/a?1"), req("/b"), req("/c?x=y"));
    let rs = s.raw_keepalive(&[a.as_bytes(), b.as_bytes(), c.as_bytes()]);
    assert_eq!(rs.len(), 3);
    let bodies: Vec<String> = rs.iter().map(Response::body_str).collect();
    assert_eq!(
        bodies,
        [
            "uri=/a args=1 host=localhost x=/a?1\n",
            "uri=/b args= host=localhost x=/b\n",
            "uri=/c args=x=y host=localhost x=/c?x=y\n",
        ]
    );
    for r in &rs {
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.header("Connection"), Some("keep-alive"));
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
        assert!(!r.chunked);
    }
}

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_response_and_the_close() {
    // A FIN the poll reports along with the request gets no event of its
    // own: the server must still read it (as nginx does with pending_eof)
    // instead of keeping the idle connection for the keep-alive timeout.
    let body = "x".repeat(1024);
    let s = Server::start(&format!(
        "http {{ server {{ listen 127.0.0.1:%%PORT%%; location / {{ return 200 \"{body}\"; }} }} }}"
    ));
    // The FIN right behind the request, and a moment later: either way.
    for i in 0..30 {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, s.port())).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        c.write_all(b"GET /h HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
        thread::sleep(Duration::from_micros(100 * (i % 3)));
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut got = Vec::new();
        let started = Instant::now();
        let read = std::io::Read::read_to_end(&mut c, &mut got);
        assert!(read.is_ok(), "try {i}: no close within 5 s ({read:?}); received: {:?}", show(&got));
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = only(&got);
        assert_eq!((r.status, r.body_str().as_str()), (200, body.as_str()), "try {i}");
    }
}

#[test]
fn connection_close_closes_after_the_response() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    c.send(b"GET /z HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = only(&c.read_to_end());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "uri=/z args= host=localhost x=\n");
}

#[test]
fn http10_closes_by_default_and_keeps_alive_on_request() {
    let s = Server::start(ECHO);
    let r = only(&s.raw(b"GET /old HTTP/1.0\r\n\r\n"));
    assert_eq!(r.version, "HTTP/1.1", "nginx answers in HTTP/1.1");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "uri=/old args= host=localhost x=\n");

    let mut c = s.connect();
    c.send(b"GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response().expect("first response");
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert_eq!(r.body_str(), "uri=/k1 args= host=localhost x=\n");
    c.send(b"GET /k2 HTTP/1.0\r\n\r\n");
    let rest = c.read_to_end();
    let r = only(&rest);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "uri=/k2 args= host=localhost x=\n");
}

#[test]
fn pipelined_requests_in_one_write_answer_in_order() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /2 HTTP/1.1\r\nHost: localhost\r\nX-Test: two\r\n\r\n\
          GET /3?q HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let rs = parse_all(&c.read_to_end());
    let bodies: Vec<String> = rs.iter().map(Response::body_str).collect();
    assert_eq!(
        bodies,
        [
            "uri=/1 args= host=localhost x=\n",
            "uri=/2 args= host=localhost x=two\n",
            "uri=/3 args=q host=localhost x=\n",
        ]
    );
    let conns: Vec<_> = rs.iter().map(|r| r.header("Connection")).collect();
    assert_eq!(conns, [Some("keep-alive"), Some("keep-alive"), Some("close")]);
}

#[test]
fn keepalive_requests_limit_closes_after_the_last() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    let req = b"GET /keep2 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    c.send(req);
    let r = c.read_response().expect("first");
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.send(req);
    let r = c.read_response().expect("second");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "k");
    assert!(c.closed_within(Duration::from_secs(3)), "socket left open");
    assert!(c.buffered().is_empty(), "extra bytes: {:?}", show(c.buffered()));
}

#[test]
fn keepalive_requests_at_server_level() {
    let s = Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%; keepalive_requests 2;
            location / { return 200 k; } } }",
    );
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    let rs = parse_all(&c.read_to_end());
    let conns: Vec<_> = rs.iter().map(|r| r.header("Connection")).collect();
    assert_eq!(conns, [Some("keep-alive"), Some("close")], "third unanswered");
}

#[test]
fn keepalive_timeout_closes_an_idle_connection() {
    let s = Server::start(
        "http { keepalive_timeout 1; server { listen 127.0.0.1:%%PORT%%;
            location / { return 204; } } }",
    );
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response().expect("response");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert_eq!(r.header("Keep-Alive"), None, "no second value, no header");
    let start = Instant::now();
    assert!(!c.closed_within(Duration::from_millis(400)), "closed too early");
    assert!(c.closed_within(Duration::from_secs(3)), "idle connection kept");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(700), "closed after {waited:?}");
    assert!(c.buffered().is_empty());
}

#[test]
fn keepalive_timeout_zero_disables_keepalive() {
    let s = Server::start(
        "http { keepalive_timeout 0; server { listen 127.0.0.1:%%PORT%%;
            location / { return 200 ok; } } }",
    );
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response().expect("response");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "ok");
    assert!(c.closed_within(Duration::from_secs(3)));
}

#[test]
fn keepalive_header_timeout_is_announced() {
    let s = Server::start(
        "http { keepalive_timeout 5 7; server { listen 127.0.0.1:%%PORT%%;
            location / { return 200 ok; } } }",
    );
    let rs = s.raw_keepalive(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]);
    assert_eq!(rs[0].header("Keep-Alive"), Some("timeout=7"));
    assert_eq!(rs[0].header("Connection"), Some("keep-alive"));
    // A closing response does not announce it.
    let r = only(&s.raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.header("Keep-Alive"), None);
}

#[test]
fn http11_without_host_is_400() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    c.send(b"GET / HTTP/1.1\r\nX-Test: a\r\n\r\n");
    let r = only(&c.read_to_end());
    assert_error_page(&r, 400, "Bad Request");
    assert_eq!(r.header("Connection"), Some("close"));
}

#[test]
fn garbage_request_line_is_400() {
    let s = Server::start(ECHO);
    for line in [
        &b"HELLO WORLD\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        b"GET / HTTZ/1.1\r\nHost: a\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET nostartslash HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let r = only(&s.raw(line));
        assert_error_page(&r, 400, "Bad Request");
        assert_eq!(r.header("Connection"), Some("close"), "{:?}", show(line));
    }
}

#[test]
fn request_line_longer_than_a_large_buffer_is_414() {
    let s = Server::start(
        "http { client_header_buffer_size 1k; large_client_header_buffers 2 1k;
            server { listen 127.0.0.1:%%PORT%%; location / { return 200 ok; } } }",
    );
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(1500));
    let r = only(&s.raw(req.as_bytes()));
    assert_error_page(&r, 414, "Request-URI Too Large");
    assert_eq!(r.header("Connection"), Some("close"));
    // Just under the limit is fine.
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "a".repeat(900));
    assert_eq!(only(&s.raw(req.as_bytes())).status, 200);
}

#[test]
fn header_longer_than_a_large_buffer_is_400_too_large() {
    let s = Server::start(
        "http { client_header_buffer_size 1k; large_client_header_buffers 2 1k;
            server { listen 127.0.0.1:%%PORT%%; location / { return 200 ok; } } }",
    );
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\nCookie: {}\r\n\r\n", "c".repeat(1500));
    let r = only(&s.raw(req.as_bytes()));
    assert_eq!((r.status, r.reason.as_str()), (400, "Bad Request"));
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.header("Connection"), Some("close"));
    let sig = r.header("Server").unwrap();
    let title = "400 Request Header Or Cookie Too Large";
    assert_eq!(
        r.body_str(),
        format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
             <center><h1>400 Bad Request</h1></center>\r\n\
             <center>Request Header Or Cookie Too Large</center>\r\n\
             <hr><center>{sig}</center>\r\n</body>\r\n</html>\r\n"
        )
    );
}

#[test]
fn http2_in_the_request_line_is_505() {
    let s = Server::start(ECHO);
    let r = only(&s.raw(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"));
    assert_error_page(&r, 505, "HTTP Version Not Supported");
    assert_eq!(r.header("Connection"), Some("close"));
}

#[test]
fn trace_is_405_and_closes() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    c.send(b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    // Refused while reading the head: nginx closes, the pipelined GET is
    // never answered.
    let r = only(&c.read_to_end());
    assert_error_page(&r, 405, "Not Allowed");
    assert_eq!(r.header("Connection"), Some("close"));
}

/// Opens a connection with Nagle off so that each write is its own segment.
fn nodelay(port: u16) -> TcpStream {
    let t = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    t.set_nodelay(true).unwrap();
    t.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    t
}

fn read_all(mut t: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut t, &mut out).expect("read to end");
    out
}

const SPLIT_REQ: &[u8] = b"GET /p/q?a=1&b=2 HTTP/1.1\r\nHost: Split.Example\r\nX-Test: v\r\nConnection: close\r\n\r\n";
const SPLIT_BODY: &str = "uri=/p/q args=a=1&b=2 host=split.example x=v\n";

#[test]
fn request_sent_one_byte_per_write() {
    let s = Server::start(ECHO);
    let mut t = nodelay(s.port());
    for b in SPLIT_REQ {
        t.write_all(&[*b]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let r = only(&read_all(t));
    assert_eq!(r.body_str(), SPLIT_BODY);
}

#[test]
fn request_split_at_every_point_gets_the_same_response() {
    let s = Server::start(ECHO);
    for cut in 1..SPLIT_REQ.len() {
        let mut t = nodelay(s.port());
        t.write_all(&SPLIT_REQ[..cut]).unwrap();
        thread::sleep(Duration::from_millis(5));
        t.write_all(&SPLIT_REQ[cut..]).unwrap();
        let r = only(&read_all(t));
        assert_eq!(r.status, 200, "cut at {cut}");
        assert_eq!(r.body_str(), SPLIT_BODY, "cut at {cut}");
    }
}

#[test]
fn head_gets_the_headers_without_the_body() {
    let s = Server::start(ECHO);
    let mut c = s.connect();
    c.send(
        b"HEAD /h HTTP/1.1\r\nHost: localhost\r\n\r\nGET /g HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let bytes = c.read_to_end();
    let (r, rest) = parse_head_response(&bytes);
    assert_eq!(r.status, 200);
    let len = "uri=/h args= host=localhost x=\n".len().to_string();
    assert_eq!(r.header("Content-Length"), Some(len.as_str()));
    // The very next bytes are the GET's response, not a body.
    assert!(rest.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", show(rest));
    let r = only(rest);
    assert_eq!(r.body_str(), "uri=/g args= host=localhost x=\n");
}

#[test]
fn not_found_page_has_nginx_bytes() {
    let s = Server::start("http { server { listen 127.0.0.1:%%PORT%%; location / { return 404; } } }");
    let bytes = s.raw(b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(bytes.starts_with(b"HTTP/1.1 404 Not Found\r\n"), "{:?}", show(&bytes));
    let r = only(&bytes);
    assert_error_page(&r, 404, "Not Found");
    let sig = r.header("Server").unwrap();
    assert!(sig.starts_with(&format!("{}/", product())), "Server: {sig}");
    assert!(r.body_str().contains("<center><h1>404 Not Found</h1></center>"));
}

#[test]
fn server_tokens_off_hides_the_version() {
    let s = Server::start(
        "http { server_tokens off; server { listen 127.0.0.1:%%PORT%%;
            location / { return 404; } location /ok { return 200 ok; } } }",
    );
    let r = s.get("/nope");
    assert_eq!(r.header("Server"), Some(product()));
    assert!(r.body_str().contains(&format!("<hr><center>{}</center>", product())), "{}", r.body_str());
    assert_eq!(s.get("/ok").header("Server"), Some(product()));
}

/// True if `v` reads like `Sun, 06 Nov 1994 08:49:37 GMT`.
fn is_http_date(v: &str) -> bool {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let p: Vec<&str> = v.split(' ').collect();
    let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time: Vec<&str> = p.get(4).map(|t| t.split(':').collect()).unwrap_or_default();
    p.len() == 6
        && p[0].strip_suffix(',').is_some_and(|d| days.contains(&d))
        && digits(p[1], 2)
        && months.contains(&p[2])
        && digits(p[3], 4)
        && time.len() == 3
        && time.iter().all(|t| digits(t, 2))
        && p[5] == "GMT"
}

#[test]
fn date_and_server_headers_are_present() {
    let s = Server::start(ECHO);
    let r = s.get("/");
    let date = r.header("Date").expect("Date header");
    assert!(is_http_date(date), "Date: {date}");
    assert_eq!(r.headers_all("Date").len(), 1);
    let server = r.header("Server").expect("Server header");
    assert!(server.starts_with(&format!("{}/", product())), "{server}");
    // nginx's order: Server, Date, Content-Type, Content-Length, Connection.
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Server", "Date", "Content-Type", "Content-Length", "Connection"]);
}

/// A long pipeline is served request after request without growing the
/// stack: 3000 requests in one write, the last with `Connection: close`.
/// (Each request ended by reading the next one once, recursively; a few
/// hundred overflowed a worker's stack and took the server down.)
#[test]
fn a_long_pipeline_is_answered_in_full() {
    let s = Server::start(
        "http { keepalive_requests 10000; server { listen 127.0.0.1:%%PORT%%;
            location / { return 200 \"$uri\"; } } }",
    );
    let mut wire = Vec::new();
    for i in 0..2999 {
        wire.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    wire.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let out = s.raw(&wire);
    let responses = parse_all(&out);
    assert_eq!(responses.len(), 3000, "every request answered");
    for (i, r) in responses.iter().take(2999).enumerate() {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("/{i}").into_bytes());
    }
    assert_eq!(responses[2999].body, b"/last");
    // The server is still there for a new connection.
    assert_eq!(s.get("/again").status, 200);
}

/// `$pipe` is "p" for a request that arrived behind the previous one on
/// the connection, "." otherwise.
#[test]
fn pipe_variable_marks_pipelined_requests() {
    let s = Server::start(
        "http { log_format p '$pipe $uri'; access_log %%DIR%%/pipe.log p;
            server { listen 127.0.0.1:%%PORT%%; location / { return 204; } } }",
    );
    let raw = s.raw(
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse_all(&raw).len(), 3);
    let mut c = s.connect();
    c.send(b"GET /alone HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    c.read_to_end();
    let log = std::fs::read_to_string(s.dir().join("pipe.log")).expect("access log");
    assert_eq!(log, ". /first\np /second\np /third\n. /alone\n");
}

/// `return code text` types its body as nginx does: by the URI's
/// extension through `types`, else `default_type`.
#[test]
fn return_text_is_typed_by_the_uri_extension() {
    let s = Server::start(
        "http { types { application/json json; } default_type text/x-default;
            server { listen 127.0.0.1:%%PORT%%; location / { return 200 \"{}\"; } } }",
    );
    assert_eq!(s.get("/data.json").header("Content-Type"), Some("application/json"));
    assert_eq!(s.get("/DATA.JSON").header("Content-Type"), Some("application/json"));
    assert_eq!(s.get("/data").header("Content-Type"), Some("text/x-default"));
    assert_eq!(s.get("/dir.json/data").header("Content-Type"), Some("text/x-default"));
}
