use super::*;

/// What a whole decode produced: the payload, the trailers as
/// (name, value) strings, and the bytes left after the body.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    rest: Vec<u8>,
}

/// Feeds the pieces in order, as reads from a socket would append them,
/// and decodes until done, an error, or the input runs out.
fn run(pieces: &[&[u8]]) -> Result<Option<Outcome>, ChunkedError> {
    let mut d = ChunkedDecoder::new();
    let mut input = BytesMut::new();
    let mut body = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        input.extend_from_slice(piece);
        loop {
            match d.decode(&mut input)? {
                Decoded::Data(b) => {
                    assert!(!b.is_empty(), "empty Data");
                    body.extend_from_slice(&b);
                }
                Decoded::NeedMore => {
                    assert!(input.is_empty(), "NeedMore with input left");
                    break;
                }
                Decoded::Done => {
                    assert!(d.is_done());
                    let trailers = d
                        .trailers()
                        .iter()
                        .map(|h| {
                            let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                            (s(&h.name), s(&h.value))
                        })
                        .collect();
                    // Done is sticky and leaves the rest alone.
                    let left = input.len();
                    assert_eq!(d.decode(&mut input), Ok(Decoded::Done));
                    assert_eq!(input.len(), left);
                    let mut rest = input.to_vec();
                    rest.extend(pieces[i + 1..].iter().copied().flatten());
                    return Ok(Some(Outcome { body, trailers, rest }));
                }
            }
        }
    }
    Ok(None)
}

/// The whole input at once, then split at every offset, then one byte at a
/// time: all must agree.
fn decode_every_split(input: &[u8]) -> Result<Option<Outcome>, ChunkedError> {
    let whole = run(&[input]);
    for k in 0..=input.len() {
        assert_eq!(run(&[&input[..k], &input[k..]]), whole, "split at {k} of {:?}", String::from_utf8_lossy(input));
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "one byte at a time");
    whole
}

fn body_of(input: &[u8]) -> Vec<u8> {
    decode_every_split(input).expect("valid body").expect("complete body").body
}

fn error_of(input: &[u8]) -> &'static str {
    decode_every_split(input).expect_err("invalid body").0
}

#[test]
fn single_chunk() {
    assert_eq!(body_of(b"5\r\nhello\r\n0\r\n\r\n"), b"hello");
}

#[test]
fn several_chunks_mixed_case_hex_and_leading_zeros() {
    let input = b"3\r\nabc\r\nA\r\n0123456789\r\n000a\r\nABCDEFGHIJ\r\n0\r\n\r\n";
    assert_eq!(body_of(input), b"abc0123456789ABCDEFGHIJ");
    let big = b"1F\r\n0123456789012345678901234567890\r\n0000\r\n\r\n";
    assert_eq!(body_of(big).len(), 31);
}

#[test]
fn extensions_are_skipped() {
    let input = b"5;name=value\r\nhello\r\n6 ; q=\"a;b\"\r\n world\r\n0;last\r\n\r\n";
    assert_eq!(body_of(input), b"hello world");
    assert_eq!(body_of(b"5\t\r\nhello\r\n0 \r\n\r\n"), b"hello");
}

#[test]
fn trailers_are_kept() {
    let input = b"4\r\nwiki\r\n0\r\nX-Checksum:  abc \r\nExpires: never\r\n\r\n";
    let out = decode_every_split(input).unwrap().unwrap();
    assert_eq!(out.body, b"wiki");
    assert_eq!(
        out.trailers,
        vec![("X-Checksum".to_string(), "abc".to_string()), ("Expires".to_string(), "never".to_string())]
    );
}

#[test]
fn malformed_trailer_lines_are_accepted_but_not_kept() {
    // nginx accepts any trailer line; only well-formed fields are kept.
    let input = b"0\r\nno colon here\r\n: empty name\r\nbad name: x\r\nok:\r\n\r\n";
    let out = decode_every_split(input).unwrap().unwrap();
    assert_eq!(out.trailers, vec![("ok".to_string(), String::new())]);
}

#[test]
fn empty_body() {
    let out = decode_every_split(b"0\r\n\r\n").unwrap().unwrap();
    assert!(out.body.is_empty());
    assert!(out.trailers.is_empty());
}

#[test]
fn bytes_after_the_body_are_left_for_the_next_request() {
    let input = b"2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let out = decode_every_split(input).unwrap().unwrap();
    assert_eq!(out.body, b"hi");
    assert_eq!(out.rest, b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn incomplete_bodies_need_more() {
    for input in [
        &b""[..],
        b"5",
        b"5\r",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r\n",
        b"5\r\nhello\r\n0\r\n",
        b"5\r\nhello\r\n0\r\nX: y\r\n",
        b"5\r\nhello\r\n0\r\n\r",
    ] {
        assert_eq!(decode_every_split(input), Ok(None), "{input:?}");
    }
}

#[test]
fn payload_is_not_copied() {
    let mut input = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
    let payload_at = input.as_ptr() as usize + 3;
    let mut d = ChunkedDecoder::new();
    match d.decode(&mut input).unwrap() {
        Decoded::Data(b) => {
            assert_eq!(&b[..], b"hello");
            assert_eq!(b.as_ptr() as usize, payload_at);
        }
        other => panic!("expected data, got {other:?}"),
    }
}

#[test]
fn declared_length_counts_a_chunk_before_its_data() {
    let mut d = ChunkedDecoder::new();
    let mut input = BytesMut::from(&b"10\r\n"[..]);
    assert_eq!(d.decode(&mut input), Ok(Decoded::NeedMore));
    assert_eq!(d.declared_len(), 16);
    input.extend_from_slice(b"0123456789abcdef\r\n8\r\n");
    let _ = d.decode(&mut input);
    while d.decode(&mut input) != Ok(Decoded::NeedMore) {}
    assert_eq!(d.declared_len(), 24);
}

#[test]
fn invalid_sizes() {
    assert_eq!(error_of(b"g\r\nx\r\n0\r\n\r\n"), "invalid chunk size");
    assert_eq!(error_of(b"0x5\r\nhello\r\n0\r\n\r\n"), "invalid chunk size");
    assert_eq!(error_of(b" 5\r\nhello\r\n"), "invalid chunk size");
    assert_eq!(error_of(b"-5\r\nhello\r\n"), "invalid chunk size");
    assert_eq!(error_of(b"+5\r\nhello\r\n"), "invalid chunk size");
    assert_eq!(error_of(b"\r\nhello\r\n"), "invalid chunk size");
    assert_eq!(error_of(b";ext\r\nhello\r\n"), "invalid chunk size");
    assert_eq!(error_of(b"5x\r\nhello\r\n"), "invalid chunk size");
}

#[test]
fn size_overflow() {
    // 2^63 does not fit off_t; 16 hex digits of f overflow even u64.
    assert_eq!(error_of(b"8000000000000000\r\n"), "chunk size too large");
    assert_eq!(error_of(b"ffffffffffffffffff\r\n"), "chunk size too large");
    // The largest size is accepted; then the body as a whole overflows.
    let max = b"7fffffffffffffff\r\n";
    assert_eq!(decode_every_split(max), Ok(None));
    let mut d = ChunkedDecoder::new();
    let mut input = BytesMut::from(&max[..]);
    assert_eq!(d.decode(&mut input), Ok(Decoded::NeedMore));
    assert_eq!(d.declared_len(), MAX_CHUNK_SIZE);
}

#[test]
fn total_of_chunks_overflow() {
    let mut d = ChunkedDecoder::new();
    let mut input = BytesMut::from(&b"7fffffffffffffff\r\n"[..]);
    assert_eq!(d.decode(&mut input), Ok(Decoded::NeedMore));
    // Skip the 2^63-1 bytes of data: leave only one still to come.
    d.size = 1;
    input.extend_from_slice(b"x\r\n1\r\n");
    assert!(matches!(d.decode(&mut input), Ok(Decoded::Data(_))));
    assert_eq!(d.decode(&mut input), Err(SIZE_TOO_LARGE));
}

#[test]
fn missing_crlf_after_data() {
    assert_eq!(error_of(b"5\r\nhelloX\r\n0\r\n\r\n"), "missing CRLF after chunk data");
    assert_eq!(error_of(b"5\r\nhello\rX0\r\n\r\n"), "missing CRLF after chunk data");
    assert_eq!(error_of(b"3\r\nhello\r\n0\r\n\r\n"), "missing CRLF after chunk data");
}

#[test]
fn bare_lf_is_refused_everywhere() {
    for input in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5;ext\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"0\r\nX: y\n\r\n",
        b"0\r\nX: y\r\n\r\r\n",
        b"5\rhello\r\n",
    ] {
        assert!(decode_every_split(input).is_err(), "{input:?}");
    }
}

#[test]
fn size_line_limit() {
    let mut line = b"5;".to_vec();
    line.resize(MAX_SIZE_LINE, b'x');
    line.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(run(&[&line]).unwrap().unwrap().body, b"hello");
    let mut long = b"5;".to_vec();
    long.resize(MAX_SIZE_LINE + 1, b'x');
    long.extend_from_slice(b"\r\nhello\r\n");
    assert_eq!(run(&[&long]), Err(SIZE_LINE_TOO_LONG));
    let zeros = vec![b'0'; MAX_SIZE_LINE + 1];
    assert_eq!(run(&[&zeros]), Err(SIZE_LINE_TOO_LONG));
}

#[test]
fn trailer_section_limit() {
    let mut body = b"0\r\nX: ".to_vec();
    body.resize(MAX_TRAILER_BYTES + 10, b'a');
    body.extend_from_slice(b"\r\n\r\n");
    assert_eq!(run(&[&body]), Err(TRAILERS_TOO_LARGE));
}

#[test]
fn errors_are_sticky() {
    let mut d = ChunkedDecoder::new();
    let mut input = BytesMut::from(&b"z"[..]);
    assert_eq!(d.decode(&mut input), Err(BAD_SIZE));
    let mut more = BytesMut::from(&b"5\r\nhello\r\n"[..]);
    assert_eq!(d.decode(&mut more), Err(BAD_SIZE));
    assert_eq!(BAD_SIZE.status(), 400);
    assert_eq!(BAD_SIZE.to_string(), "client sent invalid chunked body: invalid chunk size");
}
