//! End-to-end: the `sluice-backend-picker` binary as a proxy in front of
//! two std origins on loopback, each answering with its own name. The
//! request's `X-Tenant` field chooses the origin; without it (or with an
//! unknown tenant) `backend_default` does, and without a default the
//! request gets 404. Std only, with sluice's own test harness.

#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../../../tests/common/origin.rs"]
mod origin;

use common::{parse_response, show, Response, Server};
use origin::{Origin, Recorded};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-backend-picker");

/// An origin that answers every request with `name`.
fn origin_named(name: &'static str) -> Origin {
    Origin::respond(move |_: &Recorded| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}", name.len()).into_bytes()
    })
}

/// Two origins, `alpha` and `beta`, and the proxy in front of them.
/// `@A@` and `@B@` in `locations` stand for the origins' addresses.
fn start(locations: &str) -> (Origin, Origin, Server) {
    let (a, b) = (origin_named("alpha"), origin_named("beta"));
    let conf = format!(
        "http {{
            upstream tenant_a {{ server {}; }}
            upstream tenant_b {{ server {}; }}
            server {{ listen 127.0.0.1:%%PORT%%; {locations} }}
        }}",
        a.addr(),
        b.addr()
    );
    let conf = conf.replace("@A@", &a.addr()).replace("@B@", &b.addr());
    let s = Server::start_with_bin(BIN, &conf);
    (a, b, s)
}

const PICKER: &str = "location / {
    pick_backend_by_header X-Tenant;
    backend_for acme   tenant_a;
    backend_for globex tenant_b;
    backend_for direct @B@;
    backend_default    tenant_a;
    proxy_pass http://$picked_backend;
    add_header X-Picked $picked_backend;
}
location /strict/ {
    pick_backend_by_header X-Tenant;
    backend_for globex tenant_b;
    proxy_pass http://$picked_backend;
}";

/// GET `path`, with `X-Tenant: tenant` when given.
fn get(s: &Server, path: &str, tenant: Option<&str>) -> Response {
    let field = tenant.map(|t| format!("X-Tenant: {t}\r\n")).unwrap_or_default();
    let raw = s.raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{field}Connection: close\r\n\r\n").as_bytes());
    let (r, rest) = parse_response(&raw);
    assert!(rest.is_empty(), "bytes after the response: {}", show(rest));
    r
}

#[test]
fn the_header_chooses_the_upstream() {
    let (a, b, s) = start(PICKER);
    let r = get(&s, "/x", Some("acme"));
    assert_eq!((r.status, r.body_str().as_str()), (200, "alpha"));
    assert_eq!(r.header("X-Picked"), Some("tenant_a"));
    let r = get(&s, "/y", Some("globex"));
    assert_eq!((r.status, r.body_str().as_str()), (200, "beta"));
    assert_eq!(r.header("X-Picked"), Some("tenant_b"));
    // Values compare without regard to case.
    assert_eq!(get(&s, "/z", Some("GLOBEX")).body_str(), "beta");

    // Each origin saw only its own requests, with the URI as sent and the
    // upstream's name as Host ($proxy_host).
    let ra = a.wait_requests(1);
    let rb = b.wait_requests(2);
    assert_eq!(ra.iter().map(|q| q.head.target.as_str()).collect::<Vec<_>>(), ["/x"]);
    assert_eq!(rb.iter().map(|q| q.head.target.as_str()).collect::<Vec<_>>(), ["/y", "/z"]);
    assert_eq!(ra[0].head.header("Host"), Some("tenant_a"));
    assert_eq!(rb[0].head.header("Host"), Some("tenant_b"));
}

#[test]
fn without_the_header_or_with_an_unknown_tenant_the_default_serves() {
    let (a, b, s) = start(PICKER);
    let r = get(&s, "/none", None);
    assert_eq!((r.status, r.body_str().as_str()), (200, "alpha"));
    assert_eq!(r.header("X-Picked"), Some("tenant_a"));
    assert_eq!(get(&s, "/who", Some("initech")).body_str(), "alpha");
    assert_eq!(a.wait_requests(2).len(), 2);
    assert!(b.requests().is_empty(), "{:?}", b.requests());
}

#[test]
fn a_backend_may_be_an_address() {
    let (_a, b, s) = start(PICKER);
    let r = get(&s, "/d", Some("direct"));
    assert_eq!((r.status, r.body_str().as_str()), (200, "beta"));
    assert_eq!(b.wait_requests(1)[0].head.header("Host"), Some(b.addr().as_str()));
}

#[test]
fn without_a_default_an_unmatched_request_gets_404() {
    let (a, b, s) = start(PICKER);
    assert_eq!(get(&s, "/strict/x", Some("globex")).body_str(), "beta");
    assert_eq!(get(&s, "/strict/x", None).status, 404);
    assert_eq!(get(&s, "/strict/x", Some("acme")).status, 404);
    assert!(s.error_log().contains("no backend for X-Tenant: acme, and no backend_default"), "{}", s.error_log());
    assert!(a.requests().is_empty());
    assert_eq!(b.requests().len(), 1);
}

#[test]
fn bad_directives_are_refused() {
    let e =
        Server::try_start_with_bin(BIN, "http { server { listen 127.0.0.1:%%PORT%%; location / { backend_for a; } } }")
            .expect_err("one argument is refused");
    assert!(e.contains("invalid number of arguments in \"backend_for\" directive"), "{e}");
    let e = Server::try_start_with_bin(
        BIN,
        "http { server { listen 127.0.0.1:%%PORT%%; location / { backend_for a x; backend_for A y; } } }",
    )
    .expect_err("a repeated value is refused");
    assert!(e.contains("duplicate value \"A\" in \"backend_for\" directive"), "{e}");
}
