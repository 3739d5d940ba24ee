//! End-to-end: the sub module replacing strings in static files and in
//! `return` bodies.

mod common;

use std::time::Duration;

use common::Server;

const CONF: &str = "http { types { text/html html; text/plain txt; }
  sub_filter foo bar;
  server { listen 127.0.0.1:%%PORT%%; server_name localhost; root %%DIR%%;
    location / { }
    location /many/ { sub_filter_once off; }
    location /pairs/ { sub_filter_once off; sub_filter aab +; sub_filter yyz -; sub_filter aaab '*'; }
    location /var/ { sub_filter_types *; sub_filter_once off; sub_filter X$arg_s '[$arg_r]'; return 200 $arg_b; }
    location /var2/ { sub_filter_types *; sub_filter $arg_s +; return 200 $arg_b; }
    location /text/ { sub_filter_types text/plain; }
    location /lm/ { sub_filter_last_modified on; }
    location /big/ { sub_filter_once off; sub_filter needle pin; }
} }";

#[test]
fn static_file_is_rewritten_and_loses_its_length_and_validators() {
    let s = Server::start(CONF);
    s.write_file("a.html", "<p>foo and foo</p>");
    let r = s.get("/a.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "<p>bar and foo</p>", "once by default");
    assert_eq!(r.header("Content-Length"), None);
    assert!(r.chunked, "a body of unknown length goes out chunked");
    assert_eq!(r.header("Last-Modified"), None);
    assert_eq!(r.header("ETag"), None);
    let head = s.raw(b"HEAD /a.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("Content-Length"), "HEAD gets the head GET gets: {head}");
    assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head:?}");
}

#[test]
fn once_off_replaces_every_occurrence_case_insensitively() {
    let s = Server::start(CONF);
    s.write_file("many/a.html", "foo FOO Foo fo");
    assert_eq!(s.get("/many/a.html").body_str(), "bar bar bar fo");
    s.write_file("b.html", "FOO foo");
    assert_eq!(s.get("/b.html").body_str(), "bar foo");
}

#[test]
fn several_pairs_at_one_level_replace_the_outer_ones() {
    let s = Server::start(CONF);
    s.write_file("pairs/a.html", "foo xaabyyz aaab AAB");
    // `foo` is the outer level's: not inherited here. `aab` is written
    // before `aaab`, but `aaab` starts further left.
    assert_eq!(s.get("/pairs/a.html").body_str(), "foo x+- * +");
}

#[test]
fn variables_in_search_and_replacement() {
    let s = Server::start(CONF);
    let r = s.get("/var/?s=ee&r=1&b=aXEEbXeeXe");
    assert_eq!(r.body_str(), "a[1]b[1]Xe");
    assert_eq!(s.get("/var/?r=&b=aXb").body_str(), "a[]b", "`X` alone is searched");
    assert_eq!(s.get("/var2/?s=B&b=abc").body_str(), "a+c");
    // A search string that is empty is dropped; with none left the
    // response is left alone.
    let r = s.get("/var2/?b=abc");
    assert_eq!(r.body_str(), "abc");
    assert_eq!(r.header("Content-Length"), Some("3"));
}

#[test]
fn types_other_than_html_only_when_listed() {
    let s = Server::start(CONF);
    s.write_file("a.txt", "foo");
    s.write_file("text/a.txt", "foo");
    s.write_file("text/a.html", "foo");
    let plain = s.get("/a.txt");
    assert_eq!(plain.body_str(), "foo");
    assert_eq!(plain.header("Content-Length"), Some("3"), "left alone entirely");
    assert_eq!(s.get("/text/a.txt").body_str(), "bar");
    assert_eq!(s.get("/text/a.html").body_str(), "bar", "text/html is always included");
}

#[test]
fn last_modified_on_keeps_it_and_weakens_the_etag() {
    let s = Server::start(CONF);
    s.write_file("lm/a.html", "foo");
    let r = s.get("/lm/a.html");
    assert_eq!(r.body_str(), "bar");
    assert!(r.header("Last-Modified").is_some());
    let etag = r.header("ETag").expect("an ETag");
    assert!(etag.starts_with("W/\""), "{etag}");
}

/// A file of `len` bytes with `needle` straddling every multiple of `step`
/// (in alternating case), and the text the filter should make of it.
fn big_file(len: usize, step: usize) -> (Vec<u8>, Vec<u8>) {
    let mut data: Vec<u8> = (0..len).map(|i| b"abcdefghij klmnopqrstuvwxyz\n"[i % 28]).collect();
    let mut at = step;
    let mut k = 0;
    while at + 3 < len {
        let n: &[u8] = if k % 2 == 0 { b"needle" } else { b"NeEdLe" };
        data[at - 3..at + 3].copy_from_slice(n);
        at += step;
        k += 1;
    }
    let mut want = Vec::with_capacity(len);
    let mut i = 0;
    while i < len {
        if data[i..].len() >= 6 && data[i..i + 6].eq_ignore_ascii_case(b"needle") {
            want.extend_from_slice(b"pin");
            i += 6;
        } else {
            want.push(data[i]);
            i += 1;
        }
    }
    (data, want)
}

#[test]
fn large_file_with_a_match_at_every_piece_boundary() {
    let s = Server::start(CONF);
    let (data, want) = big_file(6 << 20, 32 * 1024);
    s.write_file("big/a.html", &data);
    let r = s.get("/big/a.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), want.len());
    assert!(r.body == want, "the body differs from the expected replacement");
}

/// The server's resident memory, in KiB (its workers are threads).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn large_file_to_a_stalled_reader_is_held_in_bounded_memory_then_keepalive() {
    let s = Server::start(CONF);
    let (data, want) = big_file(16 << 20, 4096);
    s.write_file("big/b.html", &data);
    s.write_file("many/x.html", "foo");
    assert_eq!(s.get("/many/x.html").body_str(), "bar", "warm-up");
    let before = rss_kib(s.pid());
    let mut c = s.connect();
    c.send(b"GET /big/b.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The client reads nothing: the server fills the socket and must wait.
    std::thread::sleep(Duration::from_millis(500));
    let grown = rss_kib(s.pid()).saturating_sub(before);
    println!("server RSS grew by {grown} KiB while the client stalled");
    assert!(grown < 8 * 1024, "the server holds {grown} KiB for a stalled 16 MiB response");
    let first = c.read_response().expect("a response");
    assert!(first.body == want, "first response differs ({} bytes)", first.body.len());
    c.send(b"GET /many/x.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let second = c.read_response().expect("a second response");
    assert_eq!(second.body_str(), "bar", "the connection goes on after the filtered response");
}
