//! End-to-end: `upstream` groups behind `proxy_pass` — balancers, peer
//! flags, passive health, `proxy_next_upstream`, and the keep-alive pool.

mod common;
#[path = "common/origin.rs"]
mod origin;

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use origin::{poll, Origin};

/// An origin whose body is its name.
fn named(name: &'static str) -> Origin {
    Origin::respond(move |_| format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}", name.len()).into_bytes())
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// sluice with `upstream u { <servers> }` and `location / { proxy_pass http://u; <loc> }`.
fn group(servers: &str, loc: &str) -> Server {
    Server::start(&format!(
        "http {{ upstream u {{ {servers} }}
         server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://u; {loc} }} }} }}"
    ))
}

fn bodies(s: &Server, n: usize) -> Vec<String> {
    (0..n).map(|i| s.get(&format!("/{i}")).body_str()).collect()
}

fn count(v: &[String], name: &str) -> usize {
    v.iter().filter(|b| *b == name).count()
}

#[test]
fn round_robin_alternates() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("server {}; server {};", a.addr(), b.addr()), "");
    assert_eq!(bodies(&s, 4), ["a", "b", "a", "b"]);
}

#[test]
fn weights_share_requests() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("server {} weight=3; server {};", a.addr(), b.addr()), "");
    let v = bodies(&s, 8);
    assert_eq!((count(&v, "a"), count(&v, "b")), (6, 2), "{v:?}");
}

#[test]
fn backup_used_only_when_primary_fails() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("server {}; server {} backup;", a.addr(), b.addr()), "");
    assert_eq!(bodies(&s, 3), ["a", "a", "a"]);
    drop(s);
    let s = group(&format!("server 127.0.0.1:{}; server {} backup;", dead_port(), b.addr()), "");
    assert_eq!(bodies(&s, 2), ["b", "b"]);
}

#[test]
fn down_peer_is_never_used() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("server {} down; server {};", a.addr(), b.addr()), "");
    assert_eq!(bodies(&s, 3), ["b", "b", "b"]);
    assert_eq!(a.accepted(), 0);
}

#[test]
fn max_fails_disables_a_dead_peer() {
    let b = named("b");
    let dead = dead_port();
    let s = group(&format!("server 127.0.0.1:{dead} max_fails=1 fail_timeout=10s; server {};", b.addr()), "");
    assert_eq!(bodies(&s, 4), ["b", "b", "b", "b"]);
    let log = s.error_log();
    let refused = "connect() failed (111: Connection refused) while connecting to upstream";
    assert_eq!(log.matches(refused).count(), 1, "{log}");
    assert!(log.contains(&format!("upstream: \"http://127.0.0.1:{dead}/0\"")), "{log}");
    assert!(log.contains("upstream server temporarily disabled while connecting to upstream"), "{log}");
}

#[test]
fn all_peers_down_gives_502_page() {
    let s = group(&format!("server 127.0.0.1:{}; server 127.0.0.1:{};", dead_port(), dead_port()), "");
    let r = s.get("/");
    assert_eq!(r.status, 502);
    assert!(r.body_str().contains("<center><h1>502 Bad Gateway</h1></center>"), "{}", r.body_str());
    let log = s.error_log();
    assert_eq!(
        log.matches("connect() failed (111: Connection refused) while connecting to upstream").count(),
        2,
        "{log}"
    );
}

#[test]
fn next_upstream_off_does_not_retry() {
    let b = named("b");
    let s = group(&format!("server 127.0.0.1:{}; server {};", dead_port(), b.addr()), "proxy_next_upstream off;");
    assert_eq!(s.get("/").status, 502);
    assert_eq!(b.accepted(), 0);
}

#[test]
fn next_upstream_http_502_and_tries() {
    let bad = Origin::fixed(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad");
    let b = named("b");
    let servers = format!("server {}; server {};", bad.addr(), b.addr());
    let s = group(&servers, "proxy_next_upstream http_502;");
    assert_eq!(s.get("/").body_str(), "b");
    drop(s);
    // One try only: the upstream's own 502 is what the client gets.
    let s = group(&servers, "proxy_next_upstream http_502; proxy_next_upstream_tries 1;");
    let r = s.get("/");
    assert_eq!((r.status, r.body_str().as_str()), (502, "bad"));
}

/// An origin that reads the request and closes without answering.
fn hangup() -> Origin {
    Origin::start(|c| {
        c.read_request();
    })
}

const POST: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";

#[test]
fn post_not_retried_after_being_sent() {
    let (h, b) = (hangup(), named("b"));
    let s = group(&format!("server {}; server {};", h.addr(), b.addr()), "");
    let (r, _) = common::parse_response(&s.raw(POST));
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(b.requests().len(), 0);
    assert!(
        s.error_log().contains("upstream prematurely closed connection while reading response header from upstream"),
        "{}",
        s.error_log()
    );
}

#[test]
fn get_retried_after_upstream_hangs_up() {
    let (h, b) = (hangup(), named("b"));
    let s = group(&format!("server {}; server {};", h.addr(), b.addr()), "");
    assert_eq!(s.get("/").body_str(), "b");
}

#[test]
fn post_retried_with_non_idempotent() {
    let (h, b) = (hangup(), named("b"));
    let s = group(&format!("server {}; server {};", h.addr(), b.addr()), "proxy_next_upstream error non_idempotent;");
    let (r, _) = common::parse_response(&s.raw(POST));
    assert_eq!((r.status, r.body_str().as_str()), (200, "b"));
    assert_eq!(b.wait_requests(1)[0].body, b"abc");
}

#[test]
fn keepalive_pool_reuses_one_connection() {
    let b = named("b");
    let s = Server::start(&format!(
        "http {{ upstream ka {{ server {}; keepalive 4; }}
         server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://ka;
            proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}",
        b.addr()
    ));
    assert_eq!(bodies(&s, 5), ["b"; 5]);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!(b.accepted(), 1, "origin connections: {}", b.accepted());
    assert!(reqs.iter().all(|r| r.head.version == "HTTP/1.1" && r.head.header("Connection").is_none()));
}

#[test]
fn keepalive_pool_keeps_at_most_n_once_responses_are_done() {
    // Three requests in flight at once need three connections; once all
    // are answered, `keepalive 1` keeps one of them and closes the others.
    let release = Arc::new(AtomicBool::new(false));
    let gate = release.clone();
    let o = Origin::respond(move |_| {
        poll(Duration::from_secs(5), || gate.load(Ordering::SeqCst));
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk".to_vec()
    });
    let s = Server::start(&format!(
        "http {{ upstream ka {{ server {}; keepalive 1; }}
         server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://ka;
            proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}",
        o.addr()
    ));
    let mut clients: Vec<_> = (0..3).map(|_| s.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(format!("GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    o.wait_requests(3);
    assert_eq!(o.accepted(), 3);
    release.store(true, Ordering::SeqCst);
    for c in clients.iter_mut() {
        assert_eq!(c.read_response().map(|r| r.body_str()), Some("k".to_string()));
    }
    // Two connections closed by the proxy (their origin threads see the end).
    assert!(poll(Duration::from_secs(5), || o.finished() == 2), "origin connections closed: {}", o.finished());
    // The one kept serves what comes next.
    assert_eq!(bodies(&s, 3), ["k"; 3]);
    assert_eq!((o.accepted(), o.finished()), (3, 2));
}

#[test]
fn keepalive_timeout_forgets_idle_connections() {
    let b = named("b");
    let s = Server::start(&format!(
        "http {{ upstream ka {{ server {}; keepalive 4; keepalive_timeout 300ms; }}
         server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://ka;
            proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}",
        b.addr()
    ));
    // Back to back: the parked connection is reused.
    assert_eq!(bodies(&s, 2), ["b"; 2]);
    assert_eq!(b.accepted(), 1);
    // Idle past the timeout: forgotten, so the next request connects anew
    // (its first use does not expire the second one parked meanwhile).
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(bodies(&s, 2), ["b"; 2]);
    assert_eq!(b.accepted(), 2, "origin connections: {}", b.accepted());
}

#[test]
fn ip_hash_sticks_to_one_peer() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("ip_hash; server {}; server {};", a.addr(), b.addr()), "");
    let v = bodies(&s, 6);
    assert!(v.iter().all(|x| *x == v[0]), "{v:?}");
}

#[test]
fn consistent_hash_on_arg() {
    let (a, b) = (named("a"), named("b"));
    let s = group(&format!("hash $arg_k consistent; server {}; server {};", a.addr(), b.addr()), "");
    let mut seen = Vec::new();
    for k in 0..20 {
        let first = s.get(&format!("/?k={k}")).body_str();
        let again = s.get(&format!("/x?k={k}")).body_str();
        assert_eq!(first, again, "key {k} moved");
        seen.push(first);
    }
    // 20 keys over two peers of 160 ring points each: both get some.
    assert!(count(&seen, "a") > 0 && count(&seen, "b") > 0, "{seen:?}");
}

#[test]
fn least_conn_avoids_the_busy_peer() {
    let release = Arc::new(AtomicBool::new(false));
    let gate = |name: &'static str, release: Arc<AtomicBool>| {
        Origin::respond(move |req| {
            if req.head.target == "/slow" {
                poll(Duration::from_secs(5), || release.load(Ordering::SeqCst));
            }
            format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{name}").into_bytes()
        })
    };
    let (a, b) = (gate("a", release.clone()), gate("b", release.clone()));
    let s = group(&format!("least_conn; server {}; server {};", a.addr(), b.addr()), "");
    let mut slow = s.connect();
    slow.send(b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(poll(Duration::from_secs(3), || a.requests().len() + b.requests().len() == 1));
    let busy = if a.requests().is_empty() { "b" } else { "a" };
    let v = bodies(&s, 3);
    release.store(true, Ordering::SeqCst);
    assert!(v.iter().all(|x| x != busy), "busy peer {busy} got {v:?}");
    assert_eq!(slow.read_response().map(|r| r.body_str()), Some(busy.to_string()));
}

#[test]
fn next_upstream_on_timeout() {
    let silent = Origin::start(|c| {
        c.read_request();
        c.wait_eof(Duration::from_secs(5));
    });
    let b = named("b");
    let s = group(
        &format!("server {}; server {};", silent.addr(), b.addr()),
        "proxy_read_timeout 500ms; proxy_next_upstream timeout;",
    );
    assert_eq!(s.get("/").body_str(), "b");
    assert!(
        s.error_log()
            .contains("upstream timed out (110: Connection timed out) while reading response header from upstream"),
        "{}",
        s.error_log()
    );
}

#[test]
fn keepalive_pool_survives_an_origin_closing_idle_connections() {
    // Keep-alive responses, but the origin closes after each one.
    let o = Origin::start(|c| {
        c.read_request();
        c.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk");
    });
    let s = Server::start(&format!(
        "http {{ upstream ka {{ server {}; keepalive 4; }}
         server {{ listen 127.0.0.1:%%PORT%%; location / {{ proxy_pass http://ka;
            proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}",
        o.addr()
    ));
    for i in 0..4 {
        let r = s.get(&format!("/{i}"));
        assert_eq!((r.status, r.body_str().as_str()), (200, "k"), "request {i}: {r:?}");
    }
    assert_eq!(o.requests().len(), 4);
}
