//! End-to-end tests of the `sluice_status` content handler in the
//! `sluice-guide` binary: raw HTTP on loopback.

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::{Response, Server};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-guide");

fn start() -> Server {
    Server::start_with_bin(
        BIN,
        "http {
            server {
                listen 127.0.0.1:%%PORT%%;
                location = /status { sluice_status; }
                location / { return 204; }
            }
        }",
    )
}

/// The number after `"key":` in the status document.
fn field(r: &Response, key: &str) -> u64 {
    let body = r.body_str();
    let at = body.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {body}"));
    let digits: String = body[at + key.len() + 3..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{key} is not a number in {body}"))
}

const STATUS: &[u8] = b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn counts_requests_and_connections() {
    let s = start();
    let rs = s.raw_keepalive(&[STATUS, b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n", STATUS]);
    assert_eq!(rs.len(), 3);
    let (first, other, second) = (&rs[0], &rs[1], &rs[2]);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.header("Cache-Control"), Some("no-store"));
    assert!(first.body_str().starts_with('{') && first.body_str().ends_with("}\n"), "{}", first.body_str());
    assert_eq!(other.status, 204);

    assert_eq!(field(first, "pid"), u64::from(s.pid()));
    assert_eq!(field(first, "connection_requests"), 1);
    assert_eq!(field(second, "connection_requests"), 3);
    assert_eq!(field(second, "requests"), field(first, "requests") + 2, "the 204 in between counts");
    assert_eq!(field(second, "accepted"), field(first, "accepted"), "same connection");

    let third = &s.raw_keepalive(&[STATUS])[0];
    assert_eq!(field(third, "accepted"), field(first, "accepted") + 1, "one more connection");
    assert_eq!(field(third, "requests"), field(second, "requests") + 1);
    assert_eq!(field(third, "connection_requests"), 1);
}

#[test]
fn head_gets_the_head_and_post_gets_405() {
    let s = start();
    let rs = s.raw_keepalive(&[
        b"HEAD /status HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /status HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
    ]);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].body.is_empty());
    assert!(rs[0].header("Content-Length").is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 20)));
    assert_eq!(rs[1].status, 405);
}

#[test]
fn the_handler_is_not_inherited_and_the_directive_is_location_only() {
    let s = Server::start_with_bin(
        BIN,
        "http { server { listen 127.0.0.1:%%PORT%%;
            location /status { sluice_status; location /status/inner { return 204; } } } }",
    );
    assert_eq!(s.get("/status/inner").status, 204);
    assert_eq!(s.get("/status").status, 200);

    let cases = [
        ("sluice_status;", "\"sluice_status\" directive is not allowed here"),
        ("location /s { sluice_status; sluice_status; }", "\"sluice_status\" directive is duplicate"),
        ("location /s { sluice_status on; }", "invalid number of arguments in \"sluice_status\" directive"),
    ];
    for (directives, message) in cases {
        let conf = format!("http {{ server {{ listen 127.0.0.1:%%PORT%%; {directives} }} }}");
        match Server::try_start_with_bin(BIN, &conf) {
            Ok(_) => panic!("{directives} was accepted"),
            Err(report) => assert!(report.contains(message), "{directives}: {report}"),
        }
    }
}
