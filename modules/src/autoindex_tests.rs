//! Unit tests of the autoindex module's layouts and escaping.

use super::*;

fn entry(name: &str, dir: bool, size: u64) -> Entry {
    // 2021-03-04 05:06:07 UTC
    Entry { name: name.as_bytes().to_vec(), dir, file: !dir, mtime: 1_614_834_367, size }
}

fn text(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn html_page_layout() {
    let entries = [entry("sub", true, 4096), entry("a b.txt", false, 42)];
    let page = text(&html(b"/x/", &entries, false, true, 0));
    let expected = format!(
        "<html>\r\n<head><title>Index of /x/</title></head>\r\n<body>\r\n<h1>Index of /x/</h1>\
         <hr><pre><a href=\"../\">../</a>\r\n\
         <a href=\"sub/\">sub/</a>{} 04-Mar-2021 05:06 {:>19}\r\n\
         <a href=\"a%20b.txt\">a b.txt</a>{} 04-Mar-2021 05:06 {:>19}\r\n\
         </pre><hr></body>\r\n</html>\r\n",
        " ".repeat(46),
        "-",
        " ".repeat(43),
        42
    );
    assert_eq!(page, expected);
}

#[test]
fn html_long_and_escaped_names() {
    let long = format!("test-long-{}", "0".repeat(50));
    let page = text(&html(b"/", &[entry(&long, false, 0)], false, true, 0));
    assert!(page.contains(&format!(">test-long-{}..&gt;</a> ", "0".repeat(37))), "{page}");
    let angle = format!("test-long-{}", ">".repeat(50));
    let page = text(&html(b"/", &[entry(&angle, false, 0)], false, true, 0));
    assert!(page.contains(&format!(">test-long-{}..&gt;</a>", "&gt;".repeat(37))), "{page}");
    let page = text(&html(b"/<>&/", &[entry("test-escape-html-<>&", false, 0)], false, true, 0));
    assert!(page.contains("<title>Index of /&lt;&gt;&amp;/</title>"));
    assert!(page.contains("href=\"test-escape-html-%3C%3E%26\">test-escape-html-&lt;&gt;&amp;</a>"));
    let page = text(&html(b"/", &[entry("c:d%?", false, 0)], false, true, 0));
    assert!(page.contains("href=\"c%3Ad%25%3F\""), "{page}");
}

#[test]
fn html_counts_utf8_characters_only_with_a_utf8_charset() {
    let name = format!("test-utf8-{}", "ф".repeat(45));
    let page = text(&html(b"/", &[entry(&name, false, 0)], true, true, 0));
    assert!(page.contains(&format!(">test-utf8-{}..&gt;</a>", "ф".repeat(37))), "{page}");
    let short = format!("test-utf8-{}", "ф".repeat(3));
    let page = text(&html(b"/", &[entry(&short, false, 0)], true, true, 0));
    // 13 characters wide, padded to 50.
    assert!(page.contains(&format!(">{short}</a>{} ", " ".repeat(37))), "{page}");
    let mixed = format!("test-utf8-<>&-{}", "ф".repeat(45));
    let page = text(&html(b"/", &[entry(&mixed, false, 0)], true, true, 0));
    assert!(page.contains(&format!("test-utf8-&lt;&gt;&amp;-{}..", "ф".repeat(33))), "{page}");
    // Without the charset, bytes are counted: 10 + 90 bytes is long.
    let page = text(&html(b"/", &[entry(&short, false, 0)], false, true, 0));
    assert!(page.contains(&format!(">{short}</a>{} ", " ".repeat(34))), "{page}");
}

#[test]
fn html_sizes_and_local_time() {
    let entries = [entry("d", true, 0), entry("big", false, 5 * 1024 * 1024 + 600 * 1024)];
    let page = text(&html(b"/", &entries, false, false, 3600));
    assert!(page.contains("/</a>                                                ".trim_end()));
    assert!(page.contains(" 04-Mar-2021 06:06       -\r\n"), "{page}");
    assert!(page.contains(" 04-Mar-2021 06:06      6M\r\n"), "{page}");
    assert_eq!(human_size(9999), "   9999");
    assert_eq!(human_size(10000), "    10K");
    assert_eq!(human_size(10 * 1024 + 511), "    10K");
    assert_eq!(human_size(10 * 1024 + 512), "    11K");
    assert_eq!(human_size(3 * 1024 * 1024 * 1024), "     3G");
}

#[test]
fn json_and_jsonp_layout() {
    let entries = [entry("d", true, 0), entry("a\"\\\n\u{1}.txt", false, 42)];
    let expected = "[\r\n{ \"name\":\"d\", \"type\":\"directory\", \"mtime\":\"Thu, 04 Mar 2021 05:06:07 GMT\" },\
         \r\n{ \"name\":\"a\\\"\\\\\\n\\u0001.txt\", \"type\":\"file\", \"mtime\":\"Thu, 04 Mar 2021 05:06:07 GMT\", \"size\":42 }\
         \r\n]";
    assert_eq!(text(&json(&entries, None)), expected);
    assert_eq!(text(&json(&[], Some(b"foo"))), "/* callback */\r\nfoo([\r\n]);");
}

#[test]
fn xml_layout() {
    let mut other = entry("fifo<", false, 0);
    other.file = false;
    let entries = [entry("d", true, 0), entry("f\"&", false, 42), other];
    assert_eq!(
        text(&xml(&entries)),
        "<?xml version=\"1.0\"?>\r\n<list>\r\n\
         <directory mtime=\"2021-03-04T05:06:07Z\">d</directory>\r\n\
         <file mtime=\"2021-03-04T05:06:07Z\" size=\"42\">f&quot;&amp;</file>\r\n\
         <other mtime=\"2021-03-04T05:06:07Z\">fifo&lt;</other>\r\n\
         </list>\r\n"
    );
}

#[test]
fn callback_argument_lookup() {
    let args = Bytes::from_static(b"a=1&Callback=foo.bar&callback=x");
    assert_eq!(arg(&args, b"callback").as_deref(), Some(&b"foo.bar"[..]));
    assert_eq!(arg(&Bytes::from_static(b"callback="), b"callback").as_deref(), Some(&b""[..]));
    assert_eq!(arg(&Bytes::from_static(b"xcallback=1"), b"callback"), None);
    assert_eq!(arg(&Bytes::new(), b"callback"), None);
}

#[test]
fn utf8_helpers() {
    assert_eq!(utf8_length("aфb".as_bytes()), 3);
    assert_eq!(utf8_length(b"a\xffb"), 3);
    assert_eq!(utf8_prefix("ффф".as_bytes(), 2), "фф".as_bytes());
    assert_eq!(utf8_prefix("ф".as_bytes(), 5), "ф".as_bytes());
}
