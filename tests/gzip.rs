//! End-to-end: the gzip filter, gzip_static and gunzip over raw sockets
//! (framing and headers as a client sees them), and `curl --compressed`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{parse_head_response, parse_response, Response, Server};

const CONF: &str = "http { types { text/html html; text/plain txt; image/png png; }
  log_format z '$uri $gzip_ratio'; access_log %%DIR%%/access.log z;
  server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%;
    gzip on; gzip_vary on; gzip_types text/plain;
    location /v10/ { gzip_http_version 1.0; }
    location /any/ { gzip_proxied any; gzip_disable msie6 \"^Bad[ ]?Bot\"; }
    location /lvl/ { gzip_comp_level 9; gzip_buffers 4 8k; gzip_min_length 1k; }
    location /s/ { gzip_static on; }
    location /a/ { gzip_static always; }
    location /ag/ { gzip_static always; gunzip on; gunzip_buffers 2 4k; }
} }";

/// Text that compresses to roughly half: random lowercase words.
fn text(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 7 == 6 {
                b' '
            } else {
                b'a' + (x % 26) as u8
            }
        })
        .collect()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).expect("a valid gzip body");
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn request(s: &Server, method: &str, path: &str, extra: &str) -> Response {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n");
    let bytes = s.raw(req.as_bytes());
    let (r, rest) = if method == "HEAD" { parse_head_response(&bytes) } else { parse_response(&bytes) };
    assert!(rest.is_empty(), "bytes after the response");
    r
}

const AE: &str = "Accept-Encoding: gzip, deflate\r\n";

#[test]
fn compressed_body_goes_out_chunked_with_gzip_headers() {
    let s = Server::start(CONF);
    let body = text(300_000);
    s.write_file("big.html", &body);
    let r = request(&s, "GET", "/big.html", AE);
    assert_eq!(r.status, 200);
    assert!(r.chunked, "a gzipped body of unknown length is chunked");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Accept-Ranges"), None);
    assert_eq!(r.headers_all("Vary"), vec!["Accept-Encoding"]);
    assert!(r.header("ETag").is_some_and(|e| e.starts_with("W/\"")), "{:?}", r.header("ETag"));
    assert!(r.body.len() < body.len());
    assert_eq!(gunzip(&r.body), body);
    // The same file for a client without gzip: untouched, still with Vary.
    let r = request(&s, "GET", "/big.html", "");
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.header("Content-Length"), Some("300000"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    assert!(r.header("ETag").is_some_and(|e| e.starts_with('"')));
    assert_eq!(r.body, body);
    let log = std::fs::read_to_string(s.dir().join("access.log")).unwrap_or_default();
    let ratio: f64 = log.lines().next().and_then(|l| l.split(' ').nth(1)).and_then(|v| v.parse().ok()).unwrap();
    assert!(ratio > 1.0 && ratio < 3.0, "{log}");
    assert!(log.lines().nth(1).is_some_and(|l| l.ends_with(" -")), "{log}");
}

#[test]
fn slow_reader_gets_the_whole_stream() {
    // Several MiB of output: the socket fills, the filter stops with Again
    // and goes on when the client reads.
    let s = Server::start(CONF);
    // Random bytes: the output is as large as the input, more than the
    // kernel buffers of both sockets hold.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let body: Vec<u8> = (0..6 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    s.write_file("huge.txt", &body);
    let mut c = small_window_conn(s.port());
    c.write_all(format!("GET /huge.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{AE}\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let mut bytes = Vec::new();
    c.read_to_end(&mut bytes).unwrap();
    let (r, _) = parse_response(&bytes);
    assert!(r.chunked);
    assert_eq!(gunzip(&r.body), body);
}

/// A client socket with a small receive buffer, so that the server's
/// socket fills long before the body is out.
fn small_window_conn(port: u16) -> std::net::TcpStream {
    use nix::sys::socket::{connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let c = std::net::TcpStream::from(fd);
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

#[test]
fn head_304_short_refused_and_untyped_are_left_alone() {
    let s = Server::start(CONF);
    s.write_file("t.txt", text(5000));
    s.write_file("short.txt", "tiny body");
    s.write_file("p.png", text(5000));
    let head = request(&s, "HEAD", "/t.txt", AE);
    assert_eq!(head.header("Content-Encoding"), Some("gzip"), "nginx decides on HEAD as on GET");
    assert_eq!(head.header("Content-Length"), None);
    assert!(head.body.is_empty());
    let lm = request(&s, "GET", "/t.txt", "").header("Last-Modified").unwrap().to_string();
    let r = request(&s, "GET", "/t.txt", &format!("{AE}If-Modified-Since: {lm}\r\n"));
    assert_eq!(r.status, 304);
    assert_eq!(r.header("Content-Encoding"), None);
    let r = request(&s, "GET", "/short.txt", AE);
    assert_eq!((r.header("Content-Encoding"), r.body_str().as_str()), (None, "tiny body"));
    for refusal in ["Accept-Encoding: gzip;q=0\r\n", "Accept-Encoding: deflate, br\r\n", "Accept-Encoding: x-gzip\r\n"]
    {
        let r = request(&s, "GET", "/t.txt", refusal);
        assert_eq!(r.header("Content-Encoding"), None, "{refusal}");
        assert_eq!(r.header("Content-Length"), Some("5000"));
    }
    let r = request(&s, "GET", "/t.txt", "Accept-Encoding: br;q=1, gzip;q=0.5\r\n");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let r = request(&s, "GET", "/p.png", AE);
    assert_eq!((r.header("Content-Encoding"), r.header("Vary")), (None, None));
    let r = request(&s, "GET", "/nx.html", AE);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"), "nginx gzips 404 pages");
    assert!(gunzip(&r.body).starts_with(b"<html>"));
}

#[test]
fn http_version_proxied_and_disable() {
    let s = Server::start(CONF);
    for dir in ["", "v10/", "any/", "lvl/"] {
        s.write_file(&format!("{dir}t.txt"), text(5000));
    }
    let r10 = |path: &str| {
        let bytes = s.raw(format!("GET {path} HTTP/1.0\r\n{AE}\r\n").as_bytes());
        parse_response(&bytes).0
    };
    assert_eq!(r10("/t.txt").header("Content-Encoding"), None, "gzip_http_version 1.1");
    let r = r10("/v10/t.txt");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert!(!r.chunked, "HTTP/1.0: the body ends with the connection");
    assert_eq!(gunzip(&r.body), text(5000));
    let via = format!("{AE}Via: 1.1 cache\r\n");
    assert_eq!(request(&s, "GET", "/t.txt", &via).header("Content-Encoding"), None, "gzip_proxied off");
    assert_eq!(request(&s, "GET", "/any/t.txt", &via).header("Content-Encoding"), Some("gzip"));
    for ua in ["BadBot/1.0", "badbot", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)"] {
        let r = request(&s, "GET", "/any/t.txt", &format!("{AE}User-Agent: {ua}\r\n"));
        assert_eq!(r.header("Content-Encoding"), None, "{ua}");
    }
    let r = request(&s, "GET", "/any/t.txt", &format!("{AE}User-Agent: GoodBot\r\n"));
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let r = request(&s, "GET", "/lvl/t.txt", AE);
    assert_eq!(gunzip(&r.body), text(5000));
    s.write_file("lvl/small.txt", text(1000));
    assert_eq!(request(&s, "GET", "/lvl/small.txt", AE).header("Content-Encoding"), None, "gzip_min_length 1k");
}

#[test]
fn gzip_static_on_and_always() {
    let s = Server::start(CONF);
    let plain = text(20_000);
    let packed = gzip(&plain);
    for dir in ["s", "a", "ag"] {
        s.write_file(&format!("{dir}/f.html"), &plain);
        s.write_file(&format!("{dir}/f.html.gz"), &packed);
        s.write_file(&format!("{dir}/only.txt.gz"), &packed);
    }
    let r = request(&s, "GET", "/s/f.html", AE);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.header("Content-Length"), Some(packed.len().to_string().as_str()));
    assert_eq!(r.headers_all("Vary"), vec!["Accept-Encoding"]);
    assert_eq!(r.body, packed, "the .gz itself, not recompressed");
    let r = request(&s, "GET", "/s/f.html", "");
    assert_eq!((r.header("Content-Encoding"), r.header("Vary")), (None, Some("Accept-Encoding")));
    assert_eq!(r.body, plain);
    assert_eq!(request(&s, "GET", "/s/only.txt", "").status, 404);
    // always: the .gz for every client, and only.txt exists for everyone.
    let r = request(&s, "GET", "/a/only.txt", "");
    assert_eq!((r.header("Content-Encoding"), r.header("Content-Type")), (Some("gzip"), Some("text/plain")));
    assert_eq!(r.body, packed);
    // always + gunzip: clients without gzip get it inflated, streamed.
    let r = request(&s, "GET", "/ag/only.txt", "");
    assert_eq!((r.header("Content-Encoding"), r.header("Content-Length")), (None, None));
    assert!(r.chunked);
    assert_eq!(r.body, plain);
    let r = request(&s, "GET", "/ag/only.txt", AE);
    assert_eq!(r.body, packed);
    let r = request(&s, "HEAD", "/ag/f.html", "");
    assert_eq!((r.header("Content-Encoding"), r.header("Content-Length")), (None, None));
}

#[test]
fn curl_compressed_decodes_the_page() {
    let s = Server::start(CONF);
    let body = text(100_000);
    s.write_file("page.html", &body);
    let url = format!("http://127.0.0.1:{}/page.html", s.port());
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "--compressed", "-D", "-", "--max-time", "10", &url])
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&out.stdout[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(out.stdout[split..] == body[..], "curl decoded something else");
}
