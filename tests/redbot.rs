//! End-to-end: REDbot, an HTTP linter, checks a static file response —
//! head, validation (If-None-Match, If-Modified-Since), ranges — and finds
//! nothing wrong. (`.ci/run` installs REDbot; elsewhere:
//! `python3 -m pip install redbot`.)

mod common;

use std::process::Command;

use common::Server;

#[test]
fn redbot_finds_no_errors_in_a_static_response() {
    let s = Server::start("http { server { listen 127.0.0.1:%%PORT%%; root %%DIR%%/html; location / { } } }");
    let page: String = (0..200).map(|i| format!("<p>line {i} of a static page</p>\n")).collect();
    s.write_file("html/page.html", format!("<!DOCTYPE html>\n<html><body>\n{page}</body></html>\n"));
    let url = format!("http://127.0.0.1:{}/page.html", s.port());
    // Through the interpreter, so it does not matter where pip put scripts.
    let out = Command::new("python3")
        .args(["-m", "redbot.cli", "-o", "har", &url])
        .output()
        .expect("redbot must be installed (.ci/run installs it; or python3 -m pip install redbot)");
    assert!(out.status.success(), "redbot failed: {}", String::from_utf8_lossy(&out.stderr));
    let har = String::from_utf8_lossy(&out.stdout);
    assert!(har.contains("\"_red_messages\""), "no REDbot verdict in: {har}");
    // Its verdicts are GOOD, INFO, WARN or BAD; a BAD note is an error.
    assert!(!har.contains("\"BAD\""), "REDbot reports errors: {har}");
    for checked in ["IMS_304", "INM_304", "RANGE_CORRECT", "CL_CORRECT"] {
        assert!(har.contains(checked), "REDbot did not confirm {checked}: {har}");
    }
}
