//! Loading a large configuration: one `server` with 10,000 locations,
//! read with sluice's module bundle — what `sluice -t` and a reload do
//! before a worker serves anything.
//!
//! The generated `http` block has 9,000 prefix locations (`root`, `index`,
//! `add_header`), 900 exact ones (`return`) and 100 regex ones (a capture
//! used in `return`): the mix of a large generated site. Two measurements:
//!
//! * `parse`: the configuration syntax alone
//!   ([`sluice_core::conf::parse_str`]: tokens, blocks, statements);
//! * `load`: the whole [`Cycle::load`] — syntax, every directive's setter,
//!   create/merge of every module's confs down the tree, postconfiguration,
//!   and the location tree.
//!
//! Nothing listens: loading only describes the sockets. The bench checks
//! that the load succeeded and saw one listening site.
//!
//! Run: `cargo bench --bench config_load` (about 30 s), or add `-- --quick`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use sluice_core::conf::parse_str;
use sluice_http::cycle::Cycle;
use sluice_http::Modules;

/// Locations in the generated server.
const LOCATIONS: usize = 10_000;

/// The generated configuration.
fn generated_conf() -> String {
    let mut s = String::from("worker_processes 1;\nevents {}\nhttp {\n  server {\n    listen 127.0.0.1:8080;\n");
    for i in 0..LOCATIONS {
        // `write!` to a String cannot fail.
        let _ = match i % 100 {
            0 => writeln!(s, "    location ~ ^/re{i}/(.+)$ {{ return 200 \"$1\"; }}"),
            1..=9 => writeln!(s, "    location = /exact{i} {{ return 200 \"exact {i}\"; }}"),
            _ => writeln!(
                s,
                "    location /app{i}/ {{ root html/app{i}; index index.html; add_header X-Location {i}; }}"
            ),
        };
    }
    s.push_str("  }\n}\n");
    s
}

fn config_load(c: &mut Criterion) {
    let text = generated_conf();
    let modules = Modules::new(sluice::modules()).expect("module list");
    let path = Path::new("/generated/sluice.conf");
    let prefix = Path::new("/generated/");
    let mut group = c.benchmark_group("config_10k_locations");
    // Each load takes milliseconds: few, long samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("parse", |b| {
        b.iter(|| {
            let parsed = parse_str(&text, path, prefix).expect("syntax");
            assert_eq!(parsed.statements.len(), 3);
            parsed
        })
    });
    group.bench_function("load", |b| {
        b.iter(|| {
            let cycle = Cycle::load(&modules, path, prefix, None, Some(&text)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cycle.http.as_ref().map(|h| h.listens.len()), Some(1));
            cycle
        })
    });
    group.finish();
}

criterion_group!(benches, config_load);
criterion_main!(benches);
