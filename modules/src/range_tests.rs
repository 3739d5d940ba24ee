//! Unit tests of the range module: the `Range` parser as nginx reads it,
//! and the body slicing (memory and file bufs, no copies).

use super::*;
use std::io::Write;

fn r(start: u64, end: u64) -> ByteRange {
    ByteRange { start, end }
}

fn ranges(v: &[(u64, u64)]) -> Parsed {
    Parsed::Ranges(v.iter().map(|&(s, e)| r(s, e)).collect())
}

#[test]
fn single_ranges() {
    assert_eq!(parse(b"0-8", 1000, None), ranges(&[(0, 9)]));
    assert_eq!(parse(b"-10", 1000, None), ranges(&[(990, 1000)]));
    assert_eq!(parse(b"990-", 1000, None), ranges(&[(990, 1000)]));
    assert_eq!(parse(b"990-1990", 1000, None), ranges(&[(990, 1000)]));
    assert_eq!(parse(b"0-10001", 1000, None), ranges(&[(0, 1000)]));
    assert_eq!(parse(b" 5 - 6 ", 1000, None), ranges(&[(5, 7)]));
    // A suffix longer than the body is the whole body.
    assert_eq!(parse(b"-5000", 1000, None), ranges(&[(0, 1000)]));
}

#[test]
fn several_ranges_keep_the_clients_order() {
    assert_eq!(parse(b"0-9, -10, 10-19", 1000, None), ranges(&[(0, 10), (990, 1000), (10, 20)]));
    // An unsatisfiable range among others is left out.
    assert_eq!(parse(b"0-9, -10, 100000-, 10-19", 1000, None), ranges(&[(0, 10), (990, 1000), (10, 20)]));
}

#[test]
fn malformed_is_not_satisfiable() {
    for spec in
        [&b"100000-"[..], b"alpha", b"10-alpha", b"10", b"10-11 12-", b"", b"-", b"5-3", b"99999999999999999999-"]
    {
        assert_eq!(parse(spec, 1000, None), Parsed::NotSatisfiable, "{}", String::from_utf8_lossy(spec));
    }
}

#[test]
fn whole_response_cases() {
    // Total size beyond the body: overlapping ranges.
    assert_eq!(parse(b"0-10001, 0-0", 1000, None), Parsed::Whole);
    // An empty range at 0 (an empty body); an empty suffix is a 416.
    assert_eq!(parse(b"0-", 0, None), Parsed::Whole);
    assert_eq!(parse(b"-0", 1000, None), Parsed::NotSatisfiable);
    // max_ranges.
    assert_eq!(parse(b"0-9, -10", 1000, Some(2)), ranges(&[(0, 10), (990, 1000)]));
    assert_eq!(parse(b"0-9, -10, 10000-", 1000, Some(2)), ranges(&[(0, 10), (990, 1000)]));
    assert_eq!(parse(b"0-9, -10, 10-19", 1000, Some(2)), Parsed::Whole);
    assert_eq!(parse(b"0-9", 1000, Some(0)), Parsed::Whole);
    // Many tiny ranges when unlimited: more heads than body.
    let swarm: Vec<String> = (0..40).map(|i| format!("{i}-{i}")).collect();
    assert_eq!(parse(swarm.join(",").as_bytes(), 1000, None), Parsed::Whole);
    assert!(matches!(parse(swarm.join(",").as_bytes(), 1000, Some(100)), Parsed::Ranges(_)));
}

fn mem_chain(parts: &[&'static [u8]], last: bool) -> Chain {
    let mut c: Chain = parts.iter().map(|p| Buf::from_static(p)).collect();
    if last {
        c.push(Buf::last());
    }
    c
}

#[test]
fn single_slice_across_calls_and_splits() {
    let body = b"abcdefghijklmnopqrstuvwxyz";
    for split in 0..=26 {
        let (a, b) = body.split_at(split);
        let a: &'static [u8] = Box::leak(a.to_vec().into_boxed_slice());
        let b: &'static [u8] = Box::leak(b.to_vec().into_boxed_slice());
        let range = r(3, 10);
        let mut off = 0;
        let mut out = slice_single(mem_chain(&[a], false), range, &mut off);
        out.append(slice_single(mem_chain(&[b], true), range, &mut off));
        assert_eq!(out.to_vec().unwrap(), b"defghij", "split at {split}");
        assert!(out.is_last(), "the range's end carries last_buf (split {split})");
        assert_eq!(out.iter().filter(|b| b.last_buf).count(), 1);
    }
}

#[test]
fn single_slice_to_the_end_keeps_the_handlers_last_buf() {
    let mut off = 0;
    let out = slice_single(mem_chain(&[b"0123456789"], true), r(5, 10), &mut off);
    assert_eq!(out.to_vec().unwrap(), b"56789");
    assert!(out.is_last());
}

#[test]
fn file_regions_are_sliced_not_read() {
    let path = std::env::temp_dir().join(format!("sluice-range-{}", std::process::id()));
    std::fs::File::create(&path).unwrap().write_all(b"0123456789abcdef").unwrap();
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    let mut body = Chain::one(Buf::file(file.clone(), 0, 16));
    body.push(Buf::last());
    let mut off = 0;
    let out = slice_single(body.clone(), r(4, 8), &mut off);
    assert!(!out.bufs()[0].in_memory(), "still a file region");
    assert_eq!(out.to_vec().unwrap(), b"4567");
    let part = sub_chain(&body, 10, 16);
    assert!(!part.bufs()[0].in_memory());
    assert_eq!(part.to_vec().unwrap(), b"abcdef");
}

#[test]
fn sub_chains_over_several_bufs() {
    let body = mem_chain(&[b"0123", b"4567", b"89"], true);
    for start in 0..10 {
        for end in start + 1..=10 {
            let got = sub_chain(&body, start, end).to_vec().unwrap();
            assert_eq!(got, &b"0123456789"[start as usize..end as usize]);
        }
    }
    assert!(!sub_chain(&body, 0, 10).is_last(), "parts carry no flags");
}

#[test]
fn multipart_layout() {
    let ctx = Multipart {
        ranges: vec![r(0, 2), r(8, 10)],
        part_head: Bytes::from_static(
            b"\r\n--00000000000000000007\r\nContent-Type: text/plain\r\nContent-Range: bytes ",
        ),
        part_ranges: vec![Bytes::from_static(b"0-1/10\r\n\r\n"), Bytes::from_static(b"8-9/10\r\n\r\n")],
        tail: Bytes::from_static(b"\r\n--00000000000000000007--\r\n"),
        held: mem_chain(&[b"01234", b"56789"], true),
    };
    let out = multipart_body(&ctx);
    assert!(out.is_last());
    assert_eq!(
        String::from_utf8(out.to_vec().unwrap()).unwrap(),
        "\r\n--00000000000000000007\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
         \r\n--00000000000000000007\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\
         \r\n--00000000000000000007--\r\n"
    );
}

#[test]
fn boundaries_are_twenty_digits_and_distinct() {
    let a = format!("{:020}", next_boundary());
    let b = format!("{:020}", next_boundary());
    assert_eq!(a.len(), 20);
    assert_ne!(a, b);
}
