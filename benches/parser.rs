//! The request-head parser: a typical browser head (about 500 bytes, a
//! dozen headers) and the smallest useful head (`GET / HTTP/1.1` with a
//! Host), parsed whole with [`sluice_http::parse::parse_head`] and nginx's
//! default limits. Reported as heads per second and bytes per second.
//!
//! The connection calls the same parser on the bytes it has read; a head
//! that arrives in one read (the usual case) costs one call, as here. Each
//! iteration checks that a head came out, so a parser that starts refusing
//! the input fails the bench instead of timing the error path.
//!
//! Run: `cargo bench --bench parser` (about 10 s), or add `-- --quick`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_http::parse::{parse_head, HeadLimits};

/// What a desktop browser sends for a page: the usual headers, a cookie.
const BROWSER: &[u8] = b"GET /docs/guide/index.html?lang=en&page=2 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/docs/\r\n\
Connection: keep-alive\r\n\
Cookie: session=5f2b8c1e9a7d4e3f; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-Modified-Since: Tue, 01 Oct 2024 10:00:00 GMT\r\n\
\r\n";

/// The smallest head HTTP/1.1 allows: a request line and Host.
const TINY: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

fn heads(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut group = c.benchmark_group("parse_head");
    group.measurement_time(Duration::from_secs(3));
    for (name, head) in [("browser", BROWSER), ("tiny", TINY)] {
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let parsed = parse_head(std::hint::black_box(head), &limits);
                match parsed {
                    Ok(Some(h)) => h.head_len,
                    other => panic!("{name}: {other:?}"),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, heads);
criterion_main!(benches);
