//! Unit tests of the gzip module: `Accept-Encoding` as nginx reads it, the
//! User-Agent tests, `$gzip_ratio`'s format, and the streaming compressor
//! (every split of an input into bufs, flushes, file regions, bounds).

use super::*;
use sluice_core::{Buf, Chain};
use std::io::{Read, Write};

fn gunzip_all(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).expect("valid gzip");
    out
}

/// What a client could decode from a gzip stream cut short: the header is
/// skipped and the raw deflate data inflated as far as it goes.
fn inflate_prefix(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(data.len() * 20 + 1024);
    let _ = z.decompress_vec(&data[GZIP_HEADER.len()..], &mut out, flate2::FlushDecompress::Sync);
    out
}

fn bytes_of(chain: &Chain) -> Vec<u8> {
    chain.bufs().iter().flat_map(|b| b.as_bytes().expect("memory output").to_vec()).collect()
}

/// Runs chains through a pump until it is idle, as the filter does when
/// the next filter always answers Ok.
fn drain(pump: &mut Pump<Deflater>, chain: Chain) -> Chain {
    pump.push_input(chain);
    let mut out = Chain::new();
    loop {
        let c = pump.pass().unwrap();
        if c.is_empty() {
            break;
        }
        out.append(c);
        if pump.idle() {
            break;
        }
    }
    out
}

fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"sluice streams gzip, line by line\n"[i % 34] ^ (i / 997 % 3) as u8).collect()
}

/// Random lowercase letters: compresses to about 60%, so output is made
/// all along.
fn letters(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

#[test]
fn accept_encoding_as_nginx_reads_it() {
    for yes in [&b"gzip"[..], b"gzip, deflate", b"deflate, gzip", b"br,gzip", b"GZIP", b"gzip;q=0.5", b"gzip; q=1"] {
        assert!(accepts_gzip(yes), "{}", String::from_utf8_lossy(yes));
    }
    for no in
        [&b"deflate"[..], b"gzip;q=0", b"gzip;q=0.000", b"x-gzip", b"gzipx", b"gzip;q=", b"gzip;q=2", b"gzip;level=1"]
    {
        assert!(!accepts_gzip(no), "{}", String::from_utf8_lossy(no));
    }
    assert_eq!(quality(b"0.001"), 1);
    assert_eq!(quality(b"1.000"), 1000);
    assert_eq!(quality(b"1.5"), 0);
}

#[test]
fn msie6_user_agents() {
    assert!(is_msie6(b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)"));
    assert!(is_msie6(b"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"));
    assert!(!is_msie6(b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"));
    assert!(!is_msie6(b"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"));
    assert!(!is_msie6(b"Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.0)"));
    assert!(!is_msie6(b"curl/8.0"));
}

#[test]
fn ratio_rounds_the_second_decimal() {
    assert_eq!(format_ratio(1000, 1000), "1.00");
    assert_eq!(format_ratio(2125, 1000), "2.13");
    assert_eq!(format_ratio(2124, 1000), "2.12");
    assert_eq!(format_ratio(1999, 1000), "2.00");
    assert_eq!(format_ratio(10, 28), "0.36");
}

#[test]
fn content_types() {
    let mut c = GzipLocConf::default();
    assert!(c.type_ok(b"text/html; charset=utf-8"));
    assert!(!c.type_ok(b"text/plain"));
    c.types = Some(vec!["text/plain".into()]);
    assert!(c.type_ok(b"Text/Plain"));
    assert!(c.type_ok(b"text/html"));
    assert!(!c.type_ok(b"image/png"));
    c.types = Some(vec!["*".into()]);
    assert!(c.type_ok(b"image/png"));
}

#[test]
fn every_split_with_and_without_flush_decompresses_to_the_input() {
    let input = text(300);
    for flush in [false, true] {
        for a in 0..=input.len() {
            for b in (a..=input.len()).step_by(37) {
                let mut pump = Pump::new(Deflater::new(1), 2, 64);
                let mut all = Vec::new();
                for (i, part) in [&input[..a], &input[a..b], &input[b..]].into_iter().enumerate() {
                    let mut buf = Buf::mem(Bytes::copy_from_slice(part));
                    buf.flush = flush;
                    buf.last_buf = i == 2;
                    let out = drain(&mut pump, Chain::one(buf));
                    all.extend(bytes_of(&out));
                    if flush && i < 2 {
                        // A sync flush makes everything so far decodable.
                        assert!(out.wants_flush());
                        assert_eq!(inflate_prefix(&all), &input[..[a, b][i]], "split {a} {b}");
                    }
                }
                assert_eq!(gunzip_all(&all), input, "split {a} {b} flush {flush}");
                assert!(pump.done);
            }
        }
    }
}

#[test]
fn one_byte_bufs_and_flag_only_bufs() {
    let input = text(200);
    let mut pump = Pump::new(Deflater::new(6), 1, 128);
    let mut chain = Chain::new();
    for &c in &input {
        chain.push(Buf::mem(vec![c]));
        chain.push(Buf::flush());
    }
    chain.push(Buf::last());
    let out = drain(&mut pump, chain);
    assert!(out.is_last());
    assert_eq!(gunzip_all(&bytes_of(&out)), input);
}

#[test]
fn empty_body_is_a_valid_gzip_stream() {
    let mut pump = Pump::new(Deflater::new(1), 4, 4096);
    let out = drain(&mut pump, Chain::one(Buf::last()));
    assert!(out.is_last());
    assert_eq!(gunzip_all(&bytes_of(&out)), b"");
    assert_eq!(pump.codec.total_in(), 0);
}

#[test]
fn file_regions_are_read_in_pieces_and_each_pass_is_bounded() {
    let input = letters(1 << 20);
    let mut f = tempfile();
    f.write_all(&input).unwrap();
    let file = Arc::new(f);
    let (number, size) = (4, 4096);
    let mut pump = Pump::new(Deflater::new(1), number, size);
    // The region skips the first 100 bytes of the file.
    pump.push_input(Chain::one(Buf::file(file, 100, input.len() as u64 - 100).with_last()));
    let mut all = Vec::new();
    let mut passes = 0;
    loop {
        let out = pump.pass().unwrap();
        let len = out.len() as usize;
        // One piece of input may overshoot the budget by what it makes.
        assert!(len <= number * size + crate::zpump::PIECE + 64, "{len}");
        all.extend(bytes_of(&out));
        passes += 1;
        if pump.done {
            break;
        }
    }
    assert!(passes > 1, "held everything in one pass");
    assert_eq!(gunzip_all(&all), &input[100..]);
}

#[test]
fn input_after_the_end_is_ignored() {
    let mut pump = Pump::new(Deflater::new(1), 4, 4096);
    let mut c = Chain::one(Buf::mem(&b"abc"[..]).with_last());
    c.push(Buf::mem(&b"late"[..]));
    let out = drain(&mut pump, c);
    assert_eq!(gunzip_all(&bytes_of(&out)), b"abc");
}

fn tempfile() -> std::fs::File {
    let dir =
        std::env::temp_dir().join(format!("sluice-gzip-test-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("body");
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    f
}
