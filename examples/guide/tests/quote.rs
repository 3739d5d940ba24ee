//! End-to-end tests of the `quote` filters in the `sluice-guide` binary:
//! raw HTTP on loopback, with sluice's own test harness.

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::Server;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-guide");

/// A server with the guide's example configuration plus `extra` locations;
/// files live under DIR/html.
fn start(server_level: &str, extra: &str) -> Server {
    Server::start_with_bin(
        BIN,
        &format!(
            "http {{
                types {{ text/plain txt; text/html html; }}
                server {{
                    listen 127.0.0.1:%%PORT%%;
                    root %%DIR%%/html;
                    {server_level}
                    location /letters/ {{
                        quote on;
                    }}
                    {extra}
                }}
            }}"
        ),
    )
}

/// Splits a raw response into head (without the blank line) and body.
fn split(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no head: {}", common::show(raw)));
    (String::from_utf8_lossy(&raw[..end]).into_owned(), raw[end + 4..].to_vec())
}

#[test]
fn a_text_file_goes_out_quoted_and_chunked() {
    let s = start("", "");
    s.write_file("html/letters/a.txt", "Dear sluice,\n\nthanks.\n");
    let raw = s.raw(b"GET /letters/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let (head, body) = split(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
    for gone in ["Content-Length", "ETag", "Last-Modified"] {
        assert!(!head.contains(gone), "{gone} in {head}");
    }
    // One chain from the static handler, one chunk: 14 + 4 + 10 bytes.
    assert_eq!(common::show(&body), common::show(b"1c\r\n> Dear sluice,\n> \n> thanks.\n\r\n0\r\n\r\n"));
}

#[test]
fn a_large_file_is_quoted_across_read_pieces_with_the_inherited_prefix() {
    let s = start("quote_prefix \"| \";", "");
    // Lines of varying length, 300 KB: line ends fall anywhere in the
    // filter's 32 KiB read pieces.
    let text: String = (0..20_000).map(|i| format!("{}{i}\n", "x".repeat(i % 13))).collect();
    s.write_file("html/letters/long.txt", &text);
    let r = s.get("/letters/long.txt");
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    let want: String = text.lines().map(|l| format!("| {l}\n")).collect();
    assert!(r.body == want.as_bytes(), "quoted body differs ({} bytes, want {})", r.body.len(), want.len());
}

#[test]
fn off_other_types_and_error_pages_pass_untouched() {
    let s = start("", "location /plain/ { } location /off/ { quote off; }");
    for path in ["plain/p.txt", "off/p.txt", "letters/page.html"] {
        s.write_file(&format!("html/{path}"), "line one\nline two\n");
        let r = s.get(&format!("/{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body_str(), "line one\nline two\n", "{path}");
        assert_eq!(r.header("Content-Length"), Some("18"), "{path}");
        assert!(r.header("ETag").is_some(), "{path}");
    }
    let r = s.get("/letters/missing.txt");
    assert_eq!(r.status, 404);
    assert!(r.body_str().contains("<title>404 Not Found</title>"), "{}", r.body_str());
    assert!(!r.body_str().contains("> "), "{}", r.body_str());
}

#[test]
fn a_return_body_without_final_newline_gets_one() {
    let s = start("", "location /r { quote on; default_type text/plain; return 200 \"a\\nb\"; }");
    let r = s.get("/r");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "> a\n> b\n");
    assert_eq!(r.header("Content-Length"), None);
}

#[test]
fn http10_gets_the_quoted_body_until_close() {
    let s = start("", "");
    s.write_file("html/letters/b.txt", "hi\n");
    let raw = s.raw(b"GET /letters/b.txt HTTP/1.0\r\n\r\n");
    let (head, body) = split(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("Transfer-Encoding") && !head.contains("Content-Length"), "{head}");
    assert_eq!(body, b"> hi\n");
}

#[test]
fn head_has_no_length_and_keep_alive_goes_on() {
    let s = start("", "");
    s.write_file("html/letters/c.txt", "one\ntwo\n");
    let rs = s.raw_keepalive(&[
        b"HEAD /letters/c.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /letters/c.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ]);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].header("Content-Length"), None, "HEAD announces what GET sends: no length");
    assert!(rs[0].body.is_empty());
    assert_eq!(rs[1].body_str(), "> one\n> two\n");
}

#[test]
fn bad_directives_are_rejected_with_nginx_wording() {
    let cases = [
        ("quote_prefix \"\";", "\"quote_prefix\" directive must not be empty in"),
        ("quote maybe;", "invalid value \"maybe\" in \"quote\" directive, it must be \"on\" or \"off\""),
        ("quote on; quote off;", "\"quote\" directive is duplicate"),
    ];
    for (directives, message) in cases {
        let conf = format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {directives} }} }}");
        match Server::try_start_with_bin(BIN, &conf) {
            Ok(_) => panic!("{directives} was accepted"),
            Err(report) => assert!(report.contains(message), "{directives}: {report}"),
        }
    }
}

#[test]
fn range_and_conditional_requests_get_the_whole_quoted_body() {
    // quote runs above range and not_modified (docs/writing-modules.md §6):
    // with Content-Length, Last-Modified and ETag gone, neither applies.
    // The same requests for an unquoted copy show that both would.
    let s = start("if_modified_since before;", "location /plain/ { }");
    let requests = |dir: &str| {
        [
            format!("GET /{dir}/d.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-2\r\n\r\n"),
            format!("GET /{dir}/d.txt HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: Fri, 31 Dec 2100 23:59:59 GMT\r\n\r\n"),
        ]
    };
    for dir in ["letters", "plain"] {
        s.write_file(&format!("html/{dir}/d.txt"), "one\ntwo\n");
    }
    let [range, ims] = requests("plain");
    let rs = s.raw_keepalive(&[range.as_bytes(), ims.as_bytes()]);
    assert_eq!((rs[0].status, rs[1].status), (206, 304), "unquoted: a range and a 304");
    let [range, ims] = requests("letters");
    let rs = s.raw_keepalive(&[range.as_bytes(), ims.as_bytes()]);
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), "> one\n> two\n");
    }
}
