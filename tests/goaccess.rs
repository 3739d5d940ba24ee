//! End-to-end: GoAccess, a real log analyser, reads sluice's `combined`
//! access log with its COMBINED format and finds every request valid.
//! (`.ci/run` installs goaccess; elsewhere: `apt-get install goaccess`.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;

#[test]
fn goaccess_parses_the_combined_log() {
    let mut s = Server::start(
        "http { access_log %%DIR%%/access.log combined;
            server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/html; location / { } } }",
    );
    s.write_file("html/index.html", "hello\n");
    let requests: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11; Linux) test\r\nReferer: http://ref.example/x\r\nConnection: close\r\n\r\n",
        b"GET /index.html?q=1 HTTP/1.0\r\nUser-Agent: curl/8.0\r\n\r\n",
        b"GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"HEAD /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: \"quoted\" agent\r\nConnection: close\r\n\r\n",
    ];
    for r in requests {
        s.raw(r);
    }
    // Graceful stop: every line is written before the process exits.
    s.signal("QUIT");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some(), "server exits on QUIT");
    let log = s.dir().join("access.log");
    let report = s.dir().join("report.json");
    let out = Command::new("goaccess")
        .arg(&log)
        .arg("--log-format=COMBINED")
        .arg("-o")
        .arg(&report)
        .output()
        .expect("goaccess must be installed (.ci/run installs it; or apt-get install goaccess)");
    assert!(out.status.success(), "goaccess failed: {}", String::from_utf8_lossy(&out.stderr));
    let json = std::fs::read_to_string(&report).expect("report");
    let number = |key: &str| -> u64 {
        let at = json.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} in report"));
        let rest = &json[at + key.len() + 2..];
        let digits: String =
            rest.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
        digits.parse().expect("number")
    };
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(number("total_requests"), 4, "log:\n{text}");
    assert_eq!(number("valid_requests"), 4, "log:\n{text}");
    assert_eq!(number("failed_requests"), 0, "log:\n{text}");
}
