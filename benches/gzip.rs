//! gzip compression speed: 10 MiB of text at levels 1 and 6, three ways,
//! reported as input bytes per second.
//!
//! * `flate2-zlib-rs`: flate2's raw deflate on the backend sluice uses
//!   (feature `zlib-rs`), fed 32 KiB at a time into 64 KiB of output, as
//!   the gzip filter feeds it;
//! * `miniz_oxide`: flate2's default backend, driven the same way through
//!   its own streaming call (what flate2 runs when built without
//!   `zlib-rs`) — the comparison that chose the backend;
//! * `sluice-pump`: the gzip filter's whole body work — `gzip::Deflater`
//!   behind `zpump::Pump` with the default `gzip_buffers 32 4k`, the gzip
//!   framing and CRC-32 included, output as `Bytes` bufs.
//!
//! Every variant's output is checked (inflated back, compared) once
//! before measuring. Run: `cargo bench --bench gzip` (about a minute), or
//! add `-- --quick`.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::{DataFormat, MZFlush, MZStatus};
use sluice_core::{Buf, Chain};
use sluice_modules::gzip::Deflater;
use sluice_modules::zpump::Pump;

const INPUT: usize = 10 << 20;
const PIECE: usize = 32 * 1024;
const OUT: usize = 64 * 1024;

/// Text of words drawn from a small vocabulary, with lines: compresses
/// about 3:1 at level 6, as prose and markup do.
fn text() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "server",
        "streams",
        "a",
        "response",
        "through",
        "filters",
        "<div class=\"item\">",
        "</div>",
        "gzip",
        "chunked",
        "buffer",
        "of",
        "and",
        "request",
        "header",
        "location",
        "nginx",
        "sluice",
        "compresses",
        "data",
        "to",
        "client",
        "<a href=\"/path/to/page\">",
        "</a>",
        "with",
        "for",
        "every",
        "byte",
        "flush",
        "last",
    ];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(INPUT + 64);
    while out.len() < INPUT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(13) { b'\n' } else { b' ' });
    }
    out.truncate(INPUT);
    out
}

fn flate2_raw(input: &[u8], level: u32) -> Vec<u8> {
    let mut z = flate2::Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut buf = Vec::with_capacity(OUT);
    for piece in input.chunks(PIECE) {
        let mut pos = 0;
        while pos < piece.len() {
            let before = z.total_in();
            z.compress_vec(&piece[pos..], &mut buf, flate2::FlushCompress::None).unwrap();
            pos += (z.total_in() - before) as usize;
            if buf.len() == buf.capacity() {
                out.extend_from_slice(&buf);
                buf.clear();
            }
        }
    }
    loop {
        let st = z.compress_vec(&[], &mut buf, flate2::FlushCompress::Finish).unwrap();
        out.extend_from_slice(&buf);
        buf.clear();
        if st == flate2::Status::StreamEnd {
            return out;
        }
    }
}

fn miniz(input: &[u8], level: u8) -> Vec<u8> {
    let mut c = Box::<CompressorOxide>::default();
    c.set_format_and_level(DataFormat::Raw, level);
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut buf = vec![0u8; OUT];
    let mut run = |data: &[u8], flush: MZFlush, out: &mut Vec<u8>| {
        let mut pos = 0;
        loop {
            let r = miniz_oxide::deflate::stream::deflate(&mut c, &data[pos..], &mut buf, flush);
            pos += r.bytes_consumed;
            out.extend_from_slice(&buf[..r.bytes_written]);
            let done = match flush {
                MZFlush::Finish => r.status == Ok(MZStatus::StreamEnd),
                _ => pos == data.len() && r.bytes_written < buf.len(),
            };
            if done {
                return;
            }
        }
    };
    for piece in input.chunks(PIECE) {
        run(piece, MZFlush::None, &mut out);
    }
    run(&[], MZFlush::Finish, &mut out);
    out
}

fn pump(input: &Bytes, level: u32) -> Vec<u8> {
    let mut p = Pump::new(Deflater::new(level), 32, 4096);
    p.push_input(Chain::one(Buf::mem(input.clone()).with_last()));
    let mut out = Vec::with_capacity(input.len() / 2);
    while !p.done {
        for b in p.pass().unwrap().bufs() {
            out.extend_from_slice(b.as_bytes().unwrap());
        }
    }
    out
}

fn check(input: &[u8]) {
    let raw = |d: Vec<u8>| {
        let mut o = Vec::new();
        flate2::read::DeflateDecoder::new(&d[..]).read_to_end(&mut o).unwrap();
        o
    };
    assert!(raw(flate2_raw(input, 6)) == input, "flate2 output does not inflate back");
    assert!(raw(miniz(input, 6)) == input, "miniz_oxide output does not inflate back");
    // The levels differ between the libraries (zlib-rs's level 1 is
    // zlib-ng's "quick" strategy): the sizes go beside the speeds.
    for level in [1, 6] {
        let (a, b) = (flate2_raw(input, level).len(), miniz(input, level as u8).len());
        eprintln!("level {level}: zlib-rs {a} bytes, miniz_oxide {b} bytes, input {}", input.len());
    }
    let mut o = Vec::new();
    flate2::read::GzDecoder::new(&pump(&Bytes::copy_from_slice(input), 6)[..]).read_to_end(&mut o).unwrap();
    assert!(o == input, "the pump's gzip stream does not inflate back");
}

fn bench(c: &mut Criterion) {
    let input = text();
    check(&input);
    let shared = Bytes::from(input.clone());
    let mut g = c.benchmark_group("gzip");
    g.throughput(Throughput::Bytes(INPUT as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for level in [1u32, 6] {
        g.bench_with_input(BenchmarkId::new("flate2-zlib-rs", level), &level, |b, &l| b.iter(|| flate2_raw(&input, l)));
        g.bench_with_input(BenchmarkId::new("miniz_oxide", level), &level, |b, &l| b.iter(|| miniz(&input, l as u8)));
        g.bench_with_input(BenchmarkId::new("sluice-pump", level), &level, |b, &l| b.iter(|| pump(&shared, l)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
