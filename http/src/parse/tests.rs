use super::*;

type Parsed = Result<Option<RequestHead>, HeadError>;

fn d() -> HeadLimits {
    HeadLimits::default()
}

/// Parses `input` whole, then again fed at every split (a parser given the
/// prefix, then everything) and one byte at a time: the first answer that
/// is not "need more" must always be the whole parse's.
fn parse_split(input: &[u8], limits: &HeadLimits) -> Parsed {
    let whole = parse_head(input, limits);
    let stride = if input.len() > 4096 { 61 } else { 1 };
    for k in (0..=input.len()).step_by(stride) {
        let mut p = HeadParser::new(limits);
        match p.parse(&input[..k]) {
            Ok(None) => assert_eq!(p.parse(input), whole, "split at {k}"),
            early => assert_eq!(early, whole, "prefix of {k}"),
        }
        // A parser that is not resumed must agree too.
        match parse_head(&input[..k], limits) {
            Ok(None) => {}
            early => assert_eq!(early, whole, "one-shot prefix of {k}"),
        }
    }
    let mut p = HeadParser::new(limits);
    let mut first = Ok(None);
    for k in (0..=input.len()).step_by(stride) {
        first = p.parse(&input[..k]);
        if first != Ok(None) {
            break;
        }
    }
    if first == Ok(None) {
        first = p.parse(input);
    }
    assert_eq!(first, whole, "byte by byte");
    whole
}

fn ok_with(input: &[u8], limits: &HeadLimits) -> RequestHead {
    match parse_split(input, limits) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

fn ok(input: &[u8]) -> RequestHead {
    ok_with(input, &d())
}

fn err_with(input: &[u8], limits: &HeadLimits) -> HeadError {
    match parse_split(input, limits) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

fn err(input: &[u8]) -> HeadError {
    err_with(input, &d())
}

/// A request with this target and a Host header.
fn get(target: &str) -> RequestHead {
    ok(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
}

fn get_err(target: &str) -> HeadError {
    err(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
}

const BAD: HeadError = HeadError::BadRequest("client sent invalid request");

#[test]
fn simple_request() {
    let input = b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    let h = ok(input);
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.method_name, "GET");
    assert_eq!(h.version, (1, 1));
    assert_eq!(h.request_line_bytes(), "GET /index.html?x=1 HTTP/1.1");
    assert_eq!(h.unparsed_uri_bytes(), "/index.html?x=1");
    assert_eq!(h.uri, "/index.html");
    assert_eq!(h.args, "x=1");
    assert_eq!(h.exten, "html");
    assert_eq!(h.schema, None);
    assert_eq!(h.head_len, input.len());
    assert_eq!(h.header("host").unwrap(), "example.com");
    assert_eq!(h.header("USER-AGENT").unwrap(), "t");
    assert_eq!(h.headers.len(), 2);
    assert_eq!(h.headers[0].name, "Host");
}

#[test]
fn lf_only_and_leading_empty_lines() {
    let h = ok(b"GET / HTTP/1.0\nHost: a\n\n");
    assert_eq!((h.version, h.head_len), ((1, 0), 24));
    let input = b"\r\n\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let h = ok(input);
    assert_eq!(h.request_line_bytes(), "GET /x HTTP/1.1");
    assert_eq!(h.head_len, input.len());
}

#[test]
fn http_09() {
    let h = ok(b"GET /x\r\nHost: ignored\r\n\r\n");
    assert_eq!((h.version, h.head_len, h.uri.as_ref()), ((0, 9), 8, &b"/x"[..]));
    assert!(h.headers.is_empty());
    assert_eq!(ok(b"GET /x  \n").version, (0, 9));
    assert_eq!(err(b"POST /x\r\n"), HeadError::BadRequest("client sent invalid method in HTTP/0.9 request"));
}

#[test]
fn pipelined_heads() {
    let first = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    let second = b"POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n";
    let both = [&first[..], &second[..]].concat();
    let h = ok(&both);
    assert_eq!((h.uri.as_ref(), h.head_len), (&b"/a"[..], first.len()));
    let h2 = ok(&both[h.head_len..]);
    assert_eq!((h2.method, h2.uri.as_ref()), (Method::Post, &b"/b"[..]));
    assert_eq!(h2.head_len, second.len());
}

#[test]
fn methods() {
    for (name, m) in [
        ("HEAD", Method::Head),
        ("PROPPATCH", Method::Proppatch),
        ("MKCOL", Method::Mkcol),
        ("UNLOCK", Method::Unlock),
        ("FOO_BAR-X", Method::Other),
    ] {
        let h = ok(format!("{name} / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!((h.method, h.method_name.as_ref()), (m, name.as_bytes()));
    }
    let invalid = HeadError::BadRequest("client sent invalid method");
    for line in ["get / HTTP/1.1", "G3T / HTTP/1.1", " GET / HTTP/1.1", "GET\t/ HTTP/1.1"] {
        assert_eq!(err(format!("{line}\r\n\r\n").as_bytes()), invalid, "{line}");
    }
}

#[test]
fn versions() {
    assert_eq!(ok(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n").version, (1, 2));
    assert_eq!(ok(b"GET / HTTP/1.999\r\nHost: a\r\n\r\n").version, (1, 255));
    assert_eq!(ok(b"GET  /  HTTP/1.1  \r\nHost: a\r\n\r\n").version, (1, 1));
    for v in ["HTTP/2.0", "HTTP/3", "HTTP/10.0", "HTTP/9.9"] {
        let input = format!("GET / {v}\r\n\r\n");
        assert_eq!(err(input.as_bytes()), HeadError::VersionNotSupported, "{v}");
    }
    for v in ["HTTP/0.9", "HTTP/1.1000", "HTTP/1", "HTTP/1.", "HTTP/1.x", "http/1.1", "HTTP/1.1 x"] {
        assert_eq!(err(format!("GET / {v}\r\n\r\n").as_bytes()), BAD, "{v}");
    }
    assert_eq!(err(b"GET / HTTP/1.1\r\r\n\r\n"), BAD);
    assert_eq!(err(b"GET /a b HTTP/1.1\r\n\r\n"), BAD);
    assert_eq!(HeadError::VersionNotSupported.status(), 505);
}

#[test]
fn asterisk_and_h2_preface_are_400() {
    assert_eq!(err(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), BAD);
    assert_eq!(err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), BAD);
}

#[test]
fn controls_in_the_target() {
    for target in ["/a\0b", "/a\tb", "/a\x7fb", "/\x01"] {
        assert_eq!(get_err(target), BAD, "{target:?}");
    }
    // Bytes above 0x7f pass, as nginx lets them.
    assert_eq!(get("/caf\u{e9}").uri, "/caf\u{e9}");
}

#[test]
fn absolute_form() {
    let h = ok(b"GET http://Example.COM:8080/a/../b.txt?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.schema.as_deref(), Some(&b"http"[..]));
    assert_eq!(h.host_in_uri.as_deref(), Some(&b"Example.COM:8080"[..]));
    assert_eq!((h.uri.as_ref(), h.args.as_ref()), (&b"/b.txt"[..], &b"q=1"[..]));
    assert_eq!(h.unparsed_uri_bytes(), "/a/../b.txt?q=1");
    assert_eq!(h.exten, "txt");
    assert_eq!(host_header(&h).unwrap().unwrap(), "example.com");

    let h = ok(b"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.uri.as_ref(), h.unparsed_uri()), (&b"/"[..], &b"/"[..]));
    let h = ok(b"GET http://h:81?a=b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.uri.as_ref(), h.args.as_ref()), (&b"/"[..], &b"a=b"[..]));
    assert_eq!(h.unparsed_uri_bytes(), "?a=b");
    assert_eq!(ok(b"GET http://[::1]:80/ HTTP/1.1\r\nHost: h\r\n\r\n").host_in_uri.unwrap(), "[::1]:80");
    assert_eq!(ok(b"GET http://h:/ HTTP/1.1\r\nHost: h\r\n\r\n").uri, "/");

    for target in ["http:/x/", "http//x/", "ht_tp://x/", "http://x_y/", "http://x\r\n", "1http://x/"] {
        assert_eq!(get_err(target), BAD, "{target}");
    }
    let bad_host = HeadError::BadRequest("client sent invalid host in request line");
    assert_eq!(get_err("http:///x"), bad_host);
    assert_eq!(get_err("http://a..b/x"), bad_host);
    assert_eq!(get_err("http://a:99999/x"), bad_host);
}

#[test]
fn connect() {
    let h = ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!((h.method, h.uri.as_ref()), (Method::Connect, &b"/"[..]));
    assert_eq!(h.host_in_uri.unwrap(), "example.com:443");
    let h = ok(b"CONNECT [::1]:1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(method_allowed(&h).unwrap_err().status(), 405);
    for line in ["CONNECT example.com HTTP/1.1", "CONNECT a: HTTP/1.1", "CONNECT /a HTTP/1.1", "CONNECT a:1/ HTTP/1.1"]
    {
        assert_eq!(err(format!("{line}\r\n\r\n").as_bytes()), BAD, "{line}");
    }
    let trace = ok(b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(method_allowed(&trace), Err(HeadError::NotAllowed("client sent TRACE method")));
    assert_eq!(method_allowed(&get("/")), Ok(()));
}

#[test]
fn uri_normalisation_through_the_request_line() {
    for (target, uri, args) in [
        ("/a/./b", "/a/b", ""),
        ("/a/../b", "/b", ""),
        ("/a/b/..", "/a/", ""),
        ("/a/.", "/a/", ""),
        ("//a//b", "/a/b", ""),
        ("/a/%2e%2E/b", "/b", ""),
        ("/a%2Fb", "/a/b", ""),
        ("/a%252eb", "/a%2eb", ""),
        ("/a%3Fb?c=%3F", "/a?b", "c=%3F"),
        ("/a%23b", "/a#b", ""),
        ("/a?b#c", "/a", "b"),
        ("/a#b?c", "/a", ""),
        ("/a/..?x", "/", "x"),
        ("/a/.?x", "/a/", "x"),
        ("/a\\..\\b", "/a\\..\\b", ""),
        ("/a+b%20c", "/a+b c", ""),
        ("/a?", "/a", ""),
        // Checked against nginx 1.22 on loopback.
        ("/a/%2e%2E/b%252e/%2Fc?x=%3F#f", "/b%2e/c", "x=%3F"),
    ] {
        let h = get(target);
        assert_eq!((h.uri.as_ref(), h.args.as_ref()), (uri.as_bytes(), args.as_bytes()), "{target}");
        assert_eq!(h.unparsed_uri(), target.as_bytes());
    }
    for target in ["/../x", "/..", "/%2e%2e/x", "/a/..%2f..%2fx", "/a%", "/a%2", "/a%zz", "/a%00b", "/a%%41"] {
        assert_eq!(get_err(target), BAD, "{target}");
    }
}

#[test]
fn merge_slashes_off() {
    let limits = HeadLimits { merge_slashes: false, ..d() };
    let h = ok_with(b"GET //a//b/./c HTTP/1.1\r\nHost: a\r\n\r\n", &limits);
    assert_eq!(h.uri, "//a//b/c");
    assert_eq!(normalize_uri(b"/a//..", false).unwrap(), "/a/");
    assert_eq!(normalize_uri(b"/a//..", true).unwrap(), "/");
}

#[test]
fn normalize_uri_cases() {
    let n = |s: &str| normalize_uri(s.as_bytes(), true);
    assert_eq!(n("/").unwrap(), "/");
    assert_eq!(n("/.").unwrap(), "/");
    assert_eq!(n("/...").unwrap(), "/...");
    assert_eq!(n("/a/.b/..c").unwrap(), "/a/.b/..c");
    assert_eq!(n("/a/b/c/../../d").unwrap(), "/a/d");
    assert_eq!(n("/a/.%2e/b").unwrap(), "/b");
    assert_eq!(n("/a%2f%2fb").unwrap(), "/a/b");
    assert_eq!(n("/%41%62").unwrap(), "/Ab");
    assert_eq!(n("/%C3%A9").unwrap().as_ref(), "/\u{e9}".as_bytes());
    assert_eq!(n("/a?b").unwrap(), "/a");
    assert_eq!(n("/a%3f").unwrap(), "/a?");
    assert_eq!(n("/a/..#x").unwrap(), "/");
    assert_eq!(n("/a%2e%2e").unwrap(), "/a..");
    for bad in ["", "a/b", "/..", "/x/../..", "/%", "/%g0", "/%0", "/%00"] {
        assert_eq!(n(bad), Err(BAD), "{bad:?}");
    }
}

#[test]
fn extensions() {
    for (target, exten) in [
        ("/a.b.html", "html"),
        ("/a.html/", ""),
        ("/dir.d/file", ""),
        ("/.htaccess", ""),
        ("/.a.b", "b"),
        ("/a.", ""),
        ("/a%2ehtml", "html"),
        ("/x.tar.gz?y.z", "gz"),
        ("/a.b/..", ""),
        ("/a.php/x.jpg", "jpg"),
    ] {
        assert_eq!(get(target).exten, exten.as_bytes(), "{target}");
    }
}

#[test]
fn header_values() {
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX-A:   two  words   \r\nX-T:\tt\t\r\nX-E:\r\nX-N\r\nX-R: r\r\r\n\r\n");
    let v = |n| h.header(n).unwrap().as_ref();
    assert_eq!(v("x-a"), b"two  words");
    assert_eq!(v("x-t"), b"\tt\t");
    assert_eq!(v("x-e"), b"");
    // A line without ':' is a header with an empty value (nginx).
    assert_eq!(v("x-n"), b"");
    assert_eq!(v("x-r"), b"r");
    assert_eq!(h.headers.len(), 6);
    // Repeated ordinary headers are all kept.
    let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\n\r\n");
    assert_eq!(h.headers_named("accept").count(), 2);
}

#[test]
fn invalid_header_lines_are_400() {
    let bad = HeadError::BadRequest("client sent invalid header line");
    for line in [" folded", "\tfolded", "X Y: z", "X\tY: z", ": no name", "X:\0", "X: a\0b", "X\0: a", "X: a\rb", "\rX"]
    {
        let input = format!("GET / HTTP/1.1\r\nHost: a\r\n{line}\r\n\r\n");
        assert_eq!(err(input.as_bytes()), bad, "{line:?}");
    }
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\rz"), bad);
}

#[test]
fn underscores_and_invalid_names() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nX_Under: 1\r\nX.Dot: 2\r\nX@: 3\r\nOk: 4\r\n\r\n";
    let names = |h: &RequestHead| -> Vec<String> {
        h.headers.iter().map(|x| String::from_utf8_lossy(&x.name).into_owned()).collect()
    };
    // Defaults: underscores off, invalid headers ignored.
    assert_eq!(names(&ok(input)), ["Host", "Ok"]);
    let under = HeadLimits { underscores_in_headers: true, ..d() };
    assert_eq!(names(&ok_with(input, &under)), ["Host", "X_Under", "Ok"]);
    // nginx keeps them, invalid or not, when told not to ignore them.
    let keep = HeadLimits { ignore_invalid_headers: false, ..d() };
    assert_eq!(names(&ok_with(input, &keep)), ["Host", "X_Under", "X.Dot", "X@", "Ok"]);
}

#[test]
fn duplicate_unique_headers() {
    let dup = HeadError::BadRequest("client sent duplicate header line");
    for name in ["Content-Length", "transfer-encoding", "If-None-Match", "Authorization", "EXPECT"] {
        let input = format!("POST / HTTP/1.1\r\nHost: a\r\n{name}: 1\r\n{name}: 1\r\n\r\n");
        assert_eq!(err(input.as_bytes()), dup, "{name}");
    }
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        HeadError::BadRequest("client sent duplicate host header")
    );
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HeadError::BadRequest("client sent invalid host header"));
}

fn head_with(headers: &str, version: &str) -> RequestHead {
    ok(format!("POST / {version}\r\n{headers}\r\n").as_bytes())
}

#[test]
fn body_framing_rules() {
    let f = |h: &str| body_framing(&head_with(h, "HTTP/1.1"));
    assert_eq!(f("Host: a\r\n"), Ok(BodyFraming::None));
    assert_eq!(f("Host: a\r\nContent-Length: 0\r\n"), Ok(BodyFraming::Length(0)));
    assert_eq!(f("Host: a\r\nContent-Length: 0012\r\n"), Ok(BodyFraming::Length(12)));
    assert_eq!(f("Host: a\r\nContent-Length: 9223372036854775807\r\n"), Ok(BodyFraming::Length(i64::MAX as u64)));
    let bad_cl = Err(HeadError::BadRequest("client sent invalid \"Content-Length\" header"));
    for v in ["", "-1", "+1", "1 2", "0x10", "9223372036854775808", "1,1", "\t1"] {
        assert_eq!(f(&format!("Host: a\r\nContent-Length: {v}\r\n")), bad_cl, "{v:?}");
    }
    assert_eq!(f("Host: a\r\nTransfer-Encoding: chunked\r\n"), Ok(BodyFraming::Chunked));
    assert_eq!(f("Host: a\r\nTransfer-Encoding: CHUNKED\r\n"), Ok(BodyFraming::Chunked));
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "chunked;x", "identity"] {
        let h = format!("Host: a\r\nTransfer-Encoding: {te}\r\n");
        assert_eq!(f(&h), Err(HeadError::NotImplemented), "{te}");
    }
    assert_eq!(HeadError::NotImplemented.status(), 501);
    assert_eq!(f("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n").unwrap_err().status(), 400);
    let h10 = head_with("Transfer-Encoding: chunked\r\n", "HTTP/1.0");
    assert_eq!(
        body_framing(&h10),
        Err(HeadError::BadRequest("client sent HTTP/1.0 request with \"Transfer-Encoding\" header"))
    );
}

#[test]
fn host_rules() {
    let missing = Err(HeadError::BadRequest("client sent HTTP/1.1 request without \"Host\" header"));
    assert_eq!(host_header(&head_with("", "HTTP/1.1")), missing);
    assert_eq!(host_header(&head_with("", "HTTP/1.0")), Ok(None));
    assert_eq!(host_header(&ok(b"GET /\r\n")), Ok(None));
    let h = head_with("Host: WWW.Example.com.:8080\r\n", "HTTP/1.1");
    assert_eq!(host_header(&h).unwrap().unwrap(), "www.example.com");
    // Even with an absolute-form target, HTTP/1.1 needs a Host header.
    let abs = ok(b"GET http://a/ HTTP/1.1\r\n\r\n");
    assert_eq!(host_header(&abs), missing);
    let abs10 = ok(b"GET http://A.b/ HTTP/1.0\r\n\r\n");
    assert_eq!(host_header(&abs10).unwrap().unwrap(), "a.b");
}

#[test]
fn validate_host_cases() {
    let v = |s: &str| validate_host(s.as_bytes());
    for (input, host) in [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.:80", "example.com"),
        ("[::1]:80", "[::1]"),
        ("[FE80::1%25]", ""),
        ("a_b~c!$&'()*+,;=%20", "a_b~c!$&'()*+,;=%20"),
        (".leading", ".leading"),
        ("h:", "h"),
        ("h:65535", "h"),
        ("1.2.3.4", "1.2.3.4"),
    ] {
        if host.is_empty() {
            assert!(v(input).is_err(), "{input}");
        } else {
            assert_eq!(v(input).unwrap(), host.as_bytes(), "{input}");
        }
    }
    for bad in [
        "",
        ".",
        ":80",
        "a..b",
        "a/b",
        "a\\b",
        "a b",
        "a@b",
        "[::1",
        "[::1]x",
        "h:65536",
        "h:1a",
        "h:-1",
        "\u{fc}ber",
        "a\0b",
        "[a/b]",
    ] {
        assert!(v(bad).is_err(), "{bad:?}");
    }
    assert_eq!(validate_host_port(b"h:8080").unwrap().port, Some(8080));
    assert_eq!(validate_host_port(b"h").unwrap().port, None);
}

#[test]
fn host_bytes_allowed_exactly_as_rfc_3986() {
    let sub_delims = b"!$&'()*+,;=";
    for ch in 0..=255u8 {
        let plain = ch.is_ascii_alphanumeric() || b"-_~".contains(&ch) || sub_delims.contains(&ch);
        let name = [b'a', ch, b'b'];
        let want_name = plain || ch == b'%' || ch == b'.';
        assert_eq!(validate_host(&name).is_ok(), want_name, "name byte {ch:#x}");
        let literal = [b'[', b'a', ch, b'b', b']'];
        let want_literal = plain || ch == b':' || ch == b'.';
        assert_eq!(validate_host(&literal).is_ok(), want_literal, "literal byte {ch:#x}");
    }
}

fn long_request_line(total: usize) -> Vec<u8> {
    // "GET /xxx HTTP/1.1\r\n" is `total` bytes long.
    let path_len = total - "GET  HTTP/1.1\r\n".len();
    let mut v = b"GET /".to_vec();
    v.resize(4 + path_len, b'x');
    v.extend_from_slice(b" HTTP/1.1\r\n");
    assert_eq!(v.len(), total);
    v
}

fn header_line(total: usize) -> Vec<u8> {
    let mut v = b"X-Long: ".to_vec();
    v.resize(total - 2, b'v');
    v.extend_from_slice(b"\r\n");
    v
}

#[test]
fn request_line_limit_is_one_large_buffer() {
    let mut ok_line = long_request_line(8192);
    ok_line.extend_from_slice(b"Host: a\r\n\r\n");
    assert_eq!(ok(&ok_line).uri.len(), 8192 - 15);
    let mut long = long_request_line(8193);
    long.extend_from_slice(b"Host: a\r\n\r\n");
    assert_eq!(err(&long), HeadError::UriTooLong);
    assert_eq!(HeadError::UriTooLong.status(), 414);
    // The 414 comes as soon as the buffer is full, without the line end.
    assert_eq!(parse_head(&long[..8192], &d()), Err(HeadError::UriTooLong));
    assert_eq!(parse_head(&long[..8191], &d()), Ok(None));
}

#[test]
fn leading_empty_lines_cost_nothing() {
    let mut input = b"\r\n".repeat(5000);
    input.extend_from_slice(&long_request_line(8192));
    input.extend_from_slice(b"Host: a\r\n\r\n");
    assert_eq!(ok(&input).head_len, input.len());
}

#[test]
fn header_line_limit_is_one_large_buffer() {
    let build = |len| {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        v.extend_from_slice(&header_line(len));
        v.extend_from_slice(b"\r\n");
        v
    };
    assert_eq!(ok(&build(8192)).header("x-long").unwrap().len(), 8192 - 10);
    assert_eq!(err(&build(8193)), HeadError::HeaderTooLarge);
    assert_eq!(HeadError::HeaderTooLarge.status(), 494);
}

#[test]
fn whole_head_limit_is_the_large_buffer_count() {
    // Each 7000-byte line needs its own 8k buffer: four fit, five do not.
    let build = |lines| {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for _ in 0..lines {
            v.extend_from_slice(&header_line(7000));
        }
        v.extend_from_slice(b"\r\n");
        v
    };
    assert_eq!(ok(&build(4)).headers.len(), 5);
    assert_eq!(err(&build(5)), HeadError::HeaderTooLarge);
    // Small lines pack: 30k of 100-byte lines fit in 1k + 4 x 8k.
    let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for _ in 0..300 {
        v.extend_from_slice(&header_line(100));
    }
    v.extend_from_slice(b"\r\n");
    assert_eq!(ok(&v).headers.len(), 301);
    let limits = HeadLimits { large_count: 3, ..d() };
    assert_eq!(err_with(&v, &limits), HeadError::HeaderTooLarge);
}

#[test]
fn a_head_ending_exactly_at_a_buffer_end() {
    // Request line + header fill the 1k buffer exactly; the final empty
    // line needs a large buffer, which exists — unless there are none.
    let mut v = b"GET / HTTP/1.1\r\n".to_vec();
    v.extend_from_slice(&header_line(1024 - 16));
    v.extend_from_slice(b"\r\n");
    assert_eq!(ok(&v).headers.len(), 1);
    let none = HeadLimits { large_count: 0, ..d() };
    assert_eq!(err_with(&v, &none), HeadError::HeaderTooLarge);
}

#[test]
fn max_headers() {
    let limits = HeadLimits { max_headers: 2, ..d() };
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nX_Ignored: 1\r\nB: 2\r\n\r\n";
    assert_eq!(ok_with(input, &limits).headers.len(), 2);
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(err_with(input, &limits), HeadError::HeaderTooLarge);
}

#[test]
fn errors_are_sticky_and_logged_with_nginx_wording() {
    let mut p = HeadParser::new(&d());
    assert_eq!(p.parse(b"get"), Err(HeadError::BadRequest("client sent invalid method")));
    assert_eq!(p.parse(b"GET / HTTP/1.1\r\n\r\n"), Err(HeadError::BadRequest("client sent invalid method")));
    assert_eq!(HeadError::UriTooLong.reason(), "client sent too long URI");
    assert_eq!(BAD.to_string(), "client sent invalid request (400)");
}

#[test]
fn error_before_a_full_buffer_wins() {
    // A NUL early in an over-long header line: nginx sees it before the
    // buffer fills, so the answer is 400, not 494.
    let mut v = b"GET / HTTP/1.1\r\nHost: a\r\nX: \0".to_vec();
    v.extend_from_slice(&vec![b'a'; 20000]);
    assert_eq!(err(&v).status(), 400);
}

#[test]
fn every_unique_header_is_found_whatever_its_case() {
    for (i, name) in UNIQUE_HEADERS.iter().enumerate() {
        assert_eq!(unique_index(name.as_bytes()), Some(i), "{name}");
        assert_eq!(unique_index(name.to_ascii_uppercase().as_bytes()), Some(i), "{name}");
    }
    assert_eq!(unique_index(b"user-agent"), None);
    assert_eq!(unique_index(b"hosts"), None);
}

#[test]
fn expect_is_where_its_index_says() {
    assert_eq!(UNIQUE_HEADERS[EXPECT], "expect");
}

#[test]
fn expects_continue_only_for_the_whole_value_in_any_case() {
    let with = |v: &str| ok(format!("POST / HTTP/1.1\r\nHost: a\r\nExpect: {v}\r\n\r\n").as_bytes()).expects_continue;
    assert!(with("100-continue"));
    assert!(with("100-Continue"));
    assert!(!with("100-continue, foo"));
    assert!(!with("unknown"));
    assert!(!ok(b"POST / HTTP/1.1\r\nHost: a\r\n\r\n").expects_continue);
}

/// What `salvage` keeps of a head the parser refused.
fn salvaged(input: &[u8]) -> (HeadError, Box<RequestHead>) {
    let mut p = HeadParser::new(&d());
    let e = p.parse(input).expect_err("refused");
    (e, p.salvage(input))
}

#[test]
fn a_refused_request_line_is_kept_as_sent() {
    let (e, h) = salvaged(b"\r\nHELLO WORLD\r\nHost: a\r\n\r\n");
    assert_eq!(e.status(), 400);
    assert_eq!(h.request_line(), b"HELLO WORLD");
    assert_eq!((&h.uri[..], h.unparsed_uri(), h.version), (&b""[..], &b""[..], (1, 0)));
    assert!(h.headers.is_empty() && h.host_header.is_none());
    // A line cut short by the buffer's end: up to that end.
    let (_, h) = salvaged(b"GET /a\x00b");
    assert_eq!(h.request_line(), b"GET /a\x00b");
}

#[test]
fn a_refused_header_keeps_the_line_and_the_headers_before_it() {
    let (e, h) = salvaged(b"GET /x?y=1 HTTP/1.1\r\nHost: Example.ORG\r\nExpect: 100-continue\r\nBad Line\r\n\r\n");
    assert_eq!(e.status(), 400);
    assert_eq!(h.request_line(), b"GET /x?y=1 HTTP/1.1");
    assert_eq!((&h.uri[..], &h.args[..]), (&b"/x"[..], &b"y=1"[..]));
    assert_eq!(h.host_header.as_deref(), Some(&b"example.org"[..]));
    assert_eq!(h.headers.len(), 2);
    // Nothing of a refused head asks for keep-alive, chunked or 100.
    assert_eq!(h.version, (1, 0));
    assert!(!h.expects_continue);
}

#[test]
fn known_method_names_read_back() {
    let all = [
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "MKCOL",
        "COPY",
        "MOVE",
        "OPTIONS",
        "PROPFIND",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
        "PATCH",
        "TRACE",
        "CONNECT",
    ];
    for name in all {
        let m = Method::from_name(name.as_bytes());
        assert_ne!(m, Method::Other, "{name}");
        assert_eq!(m.name(), Some(name.as_bytes()), "{name}");
    }
    assert_eq!(Method::from_name(b"BREW").name(), None);
    let head = parse_head(b"PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n", &HeadLimits::default()).unwrap().unwrap();
    assert_eq!(&head.method_name[..], b"PATCH");
    let head = parse_head(b"BREW /x HTTP/1.1\r\nHost: a\r\n\r\n", &HeadLimits::default()).unwrap().unwrap();
    assert_eq!(&head.method_name[..], b"BREW");
}

#[test]
fn header_names_read_as_sent_whether_common_or_not() {
    let wire =
        b"GET / HTTP/1.1\r\nHost: a\r\nUSER-AGENT: x\r\nuser-agent: y\r\nX-Odd: z\r\nAccept-Encoding: gzip\r\n\r\n";
    let head = parse_head(wire, &HeadLimits::default()).unwrap().unwrap();
    let names: Vec<&[u8]> = head.headers.iter().map(|h| &h.name[..]).collect();
    assert_eq!(names, [&b"Host"[..], b"USER-AGENT", b"user-agent", b"X-Odd", b"Accept-Encoding"]);
    assert_eq!(head.header("user-agent").map(|v| &v[..]), Some(&b"x"[..]));
}
