//! Tests of reading `upstream { }` blocks: what they build and nginx's
//! errors, located at file:line.

use std::time::Duration;

use super::test_support::load;
use super::*;

fn err(body: &str) -> String {
    load(body).unwrap_err()
}

#[test]
fn a_block_builds_its_group() {
    let groups = load(
        "upstream backend {
            server 10.0.0.1:8080 weight=3 max_fails=2 fail_timeout=30s max_conns=7;
            server 10.0.0.2;
            server [::1]:81 down;
            server unix:/run/app.sock backup;
        }
        upstream Other { server 10.0.0.3:1; }",
    )
    .unwrap();
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!((g.name.as_str(), g.implicit, g.balancer.name()), ("backend", false, "round_robin"));
    assert_eq!(g.peers.len(), 3);
    let a = &g.peers[0];
    assert_eq!(a.addr, PeerAddr::Inet("10.0.0.1:8080".parse().unwrap()));
    assert_eq!(a.name, "10.0.0.1:8080");
    assert_eq!((a.weight, a.max_fails, a.max_conns), (3, 2, 7));
    assert_eq!(a.fail_timeout, Duration::from_secs(30));
    let b = &g.peers[1];
    assert_eq!(b.addr, PeerAddr::Inet("10.0.0.2:80".parse().unwrap()), "port 80 by default");
    assert_eq!((b.weight, b.max_fails, b.max_conns, b.fail_timeout), (1, 1, 0, Duration::from_secs(10)));
    assert!(g.peers[2].down);
    assert_eq!(g.peers[2].addr, PeerAddr::Inet("[::1]:81".parse().unwrap()));
    assert_eq!(g.backups.len(), 1);
    assert_eq!(g.backups[0].addr, PeerAddr::Unix("/run/app.sock".into()));
    assert!(g.keepalive.is_none());
    assert_eq!(g.state.lock().unwrap().len(), 4);
}

#[test]
fn a_host_name_gives_a_peer_per_address() {
    let groups = load("upstream b { server localhost:81 weight=2; }").unwrap();
    let peers = &groups[0].peers;
    assert!(!peers.is_empty());
    for p in peers {
        assert!(matches!(&p.addr, PeerAddr::Inet(a) if a.port() == 81 && a.ip().is_loopback()), "{:?}", p.addr);
        assert_eq!((p.name.as_str(), p.weight), ("localhost:81", 2));
    }
}

#[test]
fn keepalive_and_its_defaults() {
    let g = &load("upstream b { server 10.0.0.1; keepalive 16; }").unwrap()[0];
    let k = g.keepalive.unwrap();
    assert_eq!(k.max_idle, 16);
    assert_eq!((k.requests, k.time, k.timeout), (1000, Duration::from_secs(3600), Duration::from_secs(60)));
    let g = &load(
        "upstream b { keepalive_requests 5; keepalive_time 10m; keepalive_timeout 500ms;
         keepalive 2 local; server 10.0.0.1; }",
    )
    .unwrap()[0];
    let k = g.keepalive.unwrap();
    assert_eq!((k.max_idle, k.requests), (2, 5));
    assert_eq!((k.time, k.timeout), (Duration::from_secs(600), Duration::from_millis(500)));
    // The companions alone are accepted, as by nginx, and turn nothing on.
    let g = &load("upstream b { keepalive_timeout 5s; server 10.0.0.1; }").unwrap()[0];
    assert!(g.keepalive.is_none());
}

#[test]
fn balancer_directives_select_the_balancer() {
    let cases = [
        ("ip_hash;", "ip_hash"),
        ("hash $request_uri;", "hash"),
        ("hash $remote_addr consistent;", "hash consistent"),
        ("least_conn;", "least_conn"),
        ("random;", "random"),
        ("random two;", "random two"),
        ("random two least_conn;", "random two"),
        ("first;", "first"),
        // The last one wins, with nginx's warning.
        ("ip_hash; least_conn;", "least_conn"),
    ];
    for (directive, name) in cases {
        let g = &load(&format!("upstream b {{ {directive} server 10.0.0.1; server 10.0.0.2; }}")).unwrap()[0];
        assert_eq!(g.balancer.name(), name, "{directive}");
        assert_eq!(g.hash_key.is_some(), directive.starts_with("hash"), "{directive}");
    }
}

#[test]
fn block_errors_name_file_and_line() {
    assert_eq!(
        err("upstream b { server 10.0.0.1; }\nupstream B { server 10.0.0.2; }"),
        "duplicate upstream \"B\" in t.conf:3"
    );
    assert_eq!(err("upstream b {\n keepalive 2;\n}"), "no servers are inside upstream in t.conf:2");
    assert_eq!(err("upstream b {\n server 10.0.0.1;\n bogus on;\n}"), "unknown directive \"bogus\" in t.conf:4");
    assert_eq!(err("upstream b;"), "directive \"upstream\" has no opening \"{\" in t.conf:2");
    assert_eq!(err("ip_hash;"), "\"ip_hash\" directive is not allowed here in t.conf:2");
    assert_eq!(err("server { first; }"), "\"first\" directive is not allowed here in t.conf:2");
    assert_eq!(
        err("upstream b { server 10.0.0.1; ip_hash on; }"),
        "invalid number of arguments in \"ip_hash\" directive in t.conf:2"
    );
}

#[test]
fn server_parameter_errors() {
    let server = |args: &str| err(&format!("upstream b {{ server {args}; }}"));
    for bad in ["weight=0", "weight=x", "weight=", "max_fails=-1", "max_conns=1k", "fail_timeout=5ms", "slow", "Down"] {
        assert_eq!(server(&format!("10.0.0.1 {bad}")), format!("invalid parameter \"{bad}\" in t.conf:2"));
    }
    assert_eq!(server("10.0.0.1:99999"), "invalid port in upstream \"10.0.0.1:99999\" in t.conf:2");
    assert_eq!(server("10.0.0.1:0"), "invalid port in upstream \"10.0.0.1:0\" in t.conf:2");
    assert_eq!(server(":80"), "no host in upstream \":80\" in t.conf:2");
    assert_eq!(server("unix:"), "no path in the unix domain socket in upstream \"unix:\" in t.conf:2");
    assert_eq!(server("no-such-host.invalid"), "host not found in upstream \"no-such-host.invalid\" in t.conf:2");
}

#[test]
fn backup_is_refused_after_a_hashing_balancer() {
    for method in ["ip_hash;", "hash $uri;", "hash $uri consistent;", "random;"] {
        assert_eq!(
            err(&format!("upstream b {{\n {method}\n server 10.0.0.1 backup;\n}}")),
            "balancing method does not support parameter \"backup\" in t.conf:4",
            "{method}"
        );
    }
    // least_conn keeps backups; so does ip_hash written after them (nginx
    // accepts it; the backups are then chosen by round robin).
    assert!(load("upstream b { least_conn; server 10.0.0.1; server 10.0.0.2 backup; }").is_ok());
    let g = &load("upstream b { server 10.0.0.1; server 10.0.0.2 backup; ip_hash; }").unwrap()[0];
    assert_eq!(g.backups.len(), 1);
}

#[test]
fn balancer_parameter_errors() {
    let ups = |d: &str| err(&format!("upstream b {{ server 10.0.0.1; {d} }}"));
    assert_eq!(ups("hash $uri fast;"), "invalid parameter \"fast\" in t.conf:2");
    assert_eq!(ups("hash $nope;"), "unknown \"nope\" variable in t.conf:2");
    assert_eq!(ups("random three;"), "invalid parameter \"three\" in t.conf:2");
    assert_eq!(ups("random two most_conn;"), "invalid parameter \"most_conn\" in t.conf:2");
    assert_eq!(ups("keepalive x;"), "invalid value \"x\" in \"keepalive\" directive in t.conf:2");
    assert_eq!(ups("keepalive 1 global;"), "invalid parameter \"global\" in t.conf:2");
    assert_eq!(ups("keepalive 1; keepalive 2;"), "\"keepalive\" directive is duplicate in t.conf:2");
    assert_eq!(ups("keepalive_timeout 1y;"), "\"keepalive_timeout\" directive invalid value in t.conf:2");
    assert_eq!(ups("keepalive_requests x;"), "\"keepalive_requests\" directive invalid number in t.conf:2");
}

#[test]
fn references_find_blocks_or_make_implicit_groups() {
    let origin = Origin { file: std::sync::Arc::from(std::path::Path::new("t.conf")), line: 9 };
    let mut main = UpstreamMainConf::default();
    let block = load("upstream backend { server 10.0.0.1; }").unwrap().remove(0);
    main.groups.push(block.clone());
    let by_name = main.reference("BACKEND", 80, false, origin.clone());
    let implicit = main.reference("127.0.0.1", 8080, true, origin.clone());
    main.resolve_refs().unwrap();
    assert!(Arc::ptr_eq(by_name.get().unwrap(), &block));
    let g = implicit.get().unwrap();
    assert!(g.implicit && g.is_single());
    assert_eq!(g.name, "127.0.0.1:8080");
    // A port added to a block's name is nginx's error.
    main.reference("backend", 8080, true, origin);
    assert_eq!(main.resolve_refs().unwrap_err(), "upstream \"backend\" may not have port 8080 in t.conf:9");
}
