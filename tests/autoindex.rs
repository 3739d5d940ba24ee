//! End-to-end: `autoindex` listings in html, json, jsonp and xml, as nginx
//! lays them out (run with `SLUICE_TEST_BIN` naming an nginx to compare).

mod common;

use common::Server;

const CONF: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    root %%DIR%%/www;
    location / { autoindex on; }
    location /exact/ { alias %%DIR%%/www/; autoindex on; autoindex_exact_size off; }
    location /json/ { alias %%DIR%%/www/; autoindex on; autoindex_format json; }
    location /jsonp/ { alias %%DIR%%/www/; autoindex on; autoindex_format jsonp; }
    location /xml/ { alias %%DIR%%/www/; autoindex on; autoindex_format xml; }
    location /off/ { alias %%DIR%%/www/; }
    location /idx/ { alias %%DIR%%/www/sub/; autoindex on; }
} }"#;

fn start() -> Server {
    let s = Server::start(CONF);
    s.write_file("www/b-file", "x".repeat(42));
    s.write_file("www/.hidden", "");
    s.write_file("www/a <&>:%.txt", "");
    s.write_file("www/sub/index.html", "index\n");
    s.write_file(&format!("www/long-{}", "0".repeat(50)), "");
    s
}

fn body(s: &Server, path: &str) -> (u16, Option<String>, String) {
    let r = s.get(path);
    (r.status, r.header("Content-Type").map(str::to_string), String::from_utf8_lossy(&r.body).into_owned())
}

#[test]
fn html_listing_layout() {
    let s = start();
    let (status, ct, page) = body(&s, "/");
    assert_eq!((status, ct.as_deref()), (200, Some("text/html")));
    assert!(page.starts_with(
        "<html>\r\n<head><title>Index of /</title></head>\r\n<body>\r\n<h1>Index of /</h1><hr><pre><a href=\"../\">../</a>\r\n<a href=\"sub/\">sub/</a>"
    ), "{page}");
    assert!(page.ends_with("</pre><hr></body>\r\n</html>\r\n"), "{page}");
    assert!(!page.contains("hidden"));
    // Directories first, then names in byte order; names escaped.
    let sub = page.find("sub/").unwrap();
    let a = page.find("href=\"a%20%3C%26%3E%3A%25.txt\">a &lt;&amp;&gt;:%.txt</a>").expect(&page);
    let b = page.find("href=\"b-file\">b-file</a>").unwrap();
    assert!(sub < a && a < b);
    assert!(page.contains(&format!(">long-{}..&gt;</a> ", "0".repeat(42))), "{page}");
    // b-file: 6 characters padded to 50, a date, the size in 19 columns.
    let line = page.lines().find(|l| l.contains("\"b-file\"")).unwrap();
    let rest = &line[line.find("</a>").unwrap() + 4..];
    assert_eq!(&rest[..44], " ".repeat(44));
    assert!(rest.ends_with(&format!("{:>19}", 42)), "{line:?}");
    assert_eq!(rest.len(), 44 + " 04-Mar-2021 05:06 ".len() + 19);
}

#[test]
fn rounded_sizes_and_directories() {
    let s = start();
    s.write_file("www/big", vec![b'z'; 12 * 1024]);
    let (_, _, page) = body(&s, "/exact/");
    let big = page.lines().find(|l| l.contains("\"big\"")).unwrap();
    assert!(big.ends_with("    12K"), "{big:?}");
    let sub = page.lines().find(|l| l.contains("\"sub/\"")).unwrap();
    assert!(sub.ends_with("      -"), "{sub:?}");
}

#[test]
fn json_jsonp_and_xml() {
    let s = start();
    let (status, ct, j) = body(&s, "/json/");
    assert_eq!((status, ct.as_deref()), (200, Some("application/json")));
    assert!(j.starts_with("[\r\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\""), "{j}");
    assert!(j.contains("{ \"name\":\"b-file\", \"type\":\"file\", \"mtime\":\""));
    assert!(j.contains(" GMT\", \"size\":42 }"), "{j}");
    assert!(j.ends_with(" }\r\n]"));
    let (_, ct, p) = body(&s, "/jsonp/?callback=cb.x_1");
    assert_eq!(ct.as_deref(), Some("application/javascript"));
    assert!(p.starts_with("/* callback */\r\ncb.x_1([\r\n{ \"name\":\"sub\""), "{p}");
    assert!(p.ends_with("]);"));
    let (_, ct, p) = body(&s, "/jsonp/?callback=");
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert!(p.starts_with("[\r\n{"));
    assert_eq!(s.get("/jsonp/?callback=a(b)").status, 400);
    assert_eq!(s.get(&format!("/jsonp/?callback={}", "a".repeat(129))).status, 400);
    let (_, ct, x) = body(&s, "/xml/");
    assert_eq!(ct.as_deref(), Some("text/xml; charset=utf-8"));
    assert!(x.starts_with("<?xml version=\"1.0\"?>\r\n<list>\r\n<directory mtime=\""), "{x}");
    assert!(x.contains("\" size=\"42\">b-file</file>\r\n"));
    assert!(x.contains(">a &lt;&amp;&gt;:%.txt</file>"));
    assert!(x.ends_with("</list>\r\n"));
}

#[test]
fn declines_and_errors() {
    let s = start();
    // Off: the directory is forbidden, as without the module.
    assert_eq!(s.get("/off/").status, 403);
    // index wins when an index file exists.
    assert_eq!(s.get("/idx/").body, b"index\n");
    assert_eq!(s.get("/nowhere/").status, 404);
    // Only GET and HEAD are listed: a POST finds no handler, 403.
    let r = s.raw(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    assert!(r.starts_with(b"HTTP/1.1 403"), "{}", String::from_utf8_lossy(&r));
    let r = s.raw(b"HEAD / HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\n"), "{text}");
}
