//! End-to-end: a real browser (headless Chromium) loads a page sluice
//! serves gzipped and renders it. The access log shows the page went out
//! compressed (`$sent_http_content_encoding`, `$gzip_ratio`), and the DOM
//! Chromium built holds the page's text: the browser decoded the stream.
//! (`.ci/run` installs chromium; elsewhere: `apt-get install chromium`.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;

#[test]
fn chromium_renders_a_gzipped_page() {
    let mut s = Server::start(
        "http {
            log_format enc '$request_uri $status $sent_http_content_encoding $gzip_ratio';
            access_log %%DIR%%/access.log enc;
            gzip on;
            gzip_min_length 1;
            server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/html; location / { } } }",
    );
    let rows: String = (0..200).map(|i| format!("<tr><td>row {i}</td><td>{}</td></tr>\n", "x".repeat(40))).collect();
    let page = format!(
        "<!doctype html><html><head><title>gz</title></head><body><h1 id=\"t\">Rendered through gzip</h1>\
         <table>{rows}</table><p id=\"end\">the end</p></body></html>\n"
    );
    s.write_file("html/page.html", &page);
    let profile = s.dir().join("chromium-profile");
    let url = format!("http://127.0.0.1:{}/page.html", s.port());
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(&url)
        .output()
        .expect("chromium must be installed (.ci/run installs it; or apt-get install chromium)");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Rendered through gzip"), "DOM:\n{dom}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains("row 199") && dom.contains("the end"), "the whole page was decoded:\n{dom}");
    s.signal("QUIT");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some(), "server exits on QUIT");
    let log = std::fs::read_to_string(s.dir().join("access.log")).expect("access log");
    let line = log.lines().find(|l| l.starts_with("/page.html ")).unwrap_or_else(|| panic!("page in log:\n{log}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[1], "200", "{line}");
    assert_eq!(fields[2], "gzip", "the browser got the page compressed: {line}");
    let ratio: f64 = fields[3].parse().unwrap_or_else(|_| panic!("a ratio: {line}"));
    assert!(ratio > 2.0, "{line}");
}
