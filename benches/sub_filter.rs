//! sub_filter throughput: 16 MiB of HTML-like text through the sub
//! module's matcher in 32 KiB pieces (what the body filter does with a file
//! region), with 1 and with 3 search strings and `sub_filter_once off`,
//! reported as input bytes per second.
//!
//! The filter itself takes a `Request`, which only the server can build, so
//! this bench drives its public pieces: [`Patterns`] (compiled once, as at
//! configuration time), a [`Scan`] per response and an [`Output`] that the
//! chain is made from. The text has a match about every 4 KiB, so the
//! output is a mix of slices of the input and coalesced replacements.
//! Before measuring, the output is checked byte for byte against a naive
//! replacement.
//!
//! Run: `cargo bench --bench sub_filter` (about 15 s), or add `-- --quick`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use sluice_modules::sub_filter::{Output, Patterns, Scan};

/// Input bytes per response.
const TOTAL: usize = 16 << 20;
/// Bytes scanned per call (the filter's file piece).
const PIECE: usize = 32 << 10;

/// Text with `<a href="http://example.com/">` about every 4 KiB and
/// `</body>` at the end; the rest is words and tags.
fn body() -> Bytes {
    let filler = "<p>The quick brown fox jumps over the lazy dog, again and again.</p>\n";
    let mut s = String::with_capacity(TOTAL + 1024);
    let mut n = 0;
    while s.len() < TOTAL - 64 {
        s.push_str(filler);
        n += 1;
        if n % 60 == 0 {
            s.push_str("<a href=\"http://example.com/\">link</a>\n");
        }
    }
    s.push_str("</body>");
    Bytes::from(s)
}

/// Scans `body` in pieces; returns the output length (and the output when
/// `keep`).
fn filter(pats: &Patterns, values: &[Bytes], body: &Bytes, keep: bool) -> (usize, Vec<u8>) {
    let mut scan = Scan::new(pats, false);
    let mut out = Output::new();
    let mut replace = |i: usize| values[i].clone();
    let (mut len, mut kept) = (0, Vec::new());
    let mut at = 0;
    while at < body.len() {
        let end = (at + PIECE).min(body.len());
        scan.feed(pats, body.slice(at..end), &mut replace, &mut out);
        if at + PIECE >= body.len() {
            scan.finish(&mut out);
        }
        for b in out.take() {
            len += b.len();
            if keep {
                kept.extend_from_slice(&b);
            }
        }
        at = end;
    }
    (len, kept)
}

fn cases() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        ("1_string", vec!["http://example.com/"], vec!["https://example.org/"]),
        (
            "3_strings",
            vec!["http://example.com/", "</body>", "LAZY DOG"],
            vec!["https://example.org/", "<script src=\"/x.js\"></script></body>", "sleepy cat"],
        ),
    ]
}

fn sub_filter_throughput(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("sub_filter");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, search, repl) in cases() {
        let pats = Patterns::new(&search).expect("patterns");
        let values: Vec<Bytes> = repl.iter().map(|r| Bytes::from_static(r.as_bytes())).collect();
        // Check the output before timing it.
        let mut want = String::from_utf8(body.to_vec()).unwrap();
        for (s, r) in search.iter().zip(&repl) {
            want = want.replace(&s.to_ascii_lowercase(), r);
        }
        let (_, got) = filter(&pats, &values, &body, true);
        assert!(got == want.as_bytes(), "{name}: output differs from a plain replacement");
        group.bench_with_input(BenchmarkId::new("16MiB", name), &pats, |b, pats| {
            b.iter(|| filter(pats, &values, &body, false).0)
        });
    }
    group.finish();
}

criterion_group!(benches, sub_filter_throughput);
criterion_main!(benches);
