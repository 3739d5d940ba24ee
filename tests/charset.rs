//! End-to-end: the charset module labelling and recoding static files.

mod common;

use common::Server;

const CONF: &str = "http { types { text/html html; image/png png; }
  charset_map B A { 58 59; }
  server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%;
    location /utf/ { charset utf-8; }
    location /rec/ { charset A; source_charset B; }
    location /bin/ { charset utf-8; charset_types application/octet-stream; }
} }";

#[test]
fn labels_text_types_only() {
    let s = Server::start(CONF);
    s.write_file("utf/a.html", "hi");
    s.write_file("utf/a.png", "png");
    s.write_file("bin/a.png", "png");
    s.write_file("bin/a.html", "hi");
    s.write_file("plain.html", "plain");
    assert_eq!(s.get("/utf/a.html").header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(s.get("/utf/a.png").header("Content-Type"), Some("image/png"));
    assert_eq!(s.get("/plain.html").header("Content-Type"), Some("text/html"));
    assert_eq!(s.get("/bin/a.png").header("Content-Type"), Some("image/png"), "not in charset_types");
    assert_eq!(s.get("/bin/a.html").header("Content-Type"), Some("text/html"));
    // Error pages are text/html too.
    assert_eq!(s.get("/utf/nx.html").header("Content-Type"), Some("text/html; charset=utf-8"));
}

#[test]
fn recodes_whole_files_and_ranges() {
    let s = Server::start(CONF);
    s.write_file("rec/t.html", "X000XXXXXXX001XXXXXX");
    let r = s.get("/rec/t.html");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=A"));
    assert_eq!(r.body_str(), "Y000YYYYYYY001YYYYYY");
    let bytes =
        s.raw(b"GET /rec/t.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nRange: bytes=10-19\r\n\r\n");
    let (r, _) = common::parse_response(&bytes);
    assert_eq!(r.status, 206);
    assert_eq!(r.body_str(), "Y001YYYYYY");
}

#[test]
fn bad_maps_are_refused() {
    let conf = "http { charset_map A a { } server { listen 127.0.0.1:%%PORT%%; } }";
    let e = Server::try_start(conf).expect_err("same charsets");
    assert!(e.contains("\"charset_map\" between the same charsets \"A\" and \"a\""), "{e}");
}
