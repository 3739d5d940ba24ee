//! Chunked streaming: 16 MiB of payload through the work of the chunked
//! filter and the write filter into a socket whose peer discards it,
//! reported as payload bytes per second.
//!
//! The filters themselves take a `Request`, which only the server can build,
//! so this bench does the same work with the public pieces, per chunk of
//! payload:
//!
//! * the chunked filter's framing: a size line from
//!   [`sluice_http::filters::chunked::size_line`], the payload buf (a `Bytes`
//!   slice of one shared 16 MiB buffer: never copied), a static CRLF; at the
//!   end `0\r\n\r\n` and a flag-only `last_buf`;
//! * the write filter's part: the bufs are queued on an output chain and
//!   sent with [`sluice_core::io::send_chain`] (one `writev` per chunk, as
//!   every chunk here is above `postpone_output`).
//!
//! The socket is a blocking `UnixStream` from `bench_support::discard_pair`:
//! blocking, so the writer sleeps in the kernel while the reader drains
//! instead of spinning on `EAGAIN` (the server would wait in epoll). The
//! reader thread counts bytes; at the end the count must equal the framed
//! length, or the bench panics.
//!
//! Run: `cargo bench --bench chunked` (about 20 s), or add `-- --quick`.

use std::cell::Cell;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use sluice_core::io::bench_support::discard_pair;
use sluice_core::io::{send_chain, SendOpts};
use sluice_core::{Buf, Chain};
use sluice_http::filters::chunked::size_line;

/// Payload bytes per response.
const TOTAL: usize = 16 << 20;

/// Payload bytes per chunk (per call of the chunked filter).
const CHUNK_SIZES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];

/// The last chunk, without trailers.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The write filter's options for a memory body: no sendfile, no limit.
const OPTS: SendOpts = SendOpts { sendfile: false, limit: 0 };

/// Frames `body` in chunks of `chunk` bytes as the chunked filter does and
/// sends each framed chunk as the write filter does. Returns the bytes sent.
fn stream_body(sock: &UnixStream, body: &Bytes, chunk: usize) -> u64 {
    let mut out = Chain::new();
    let mut sent = 0;
    let mut at = 0;
    while at < body.len() {
        let end = (at + chunk).min(body.len());
        let payload = body.slice(at..end);
        // The chunked filter: size line, payload untouched, CRLF.
        out.push(Buf::mem(size_line(payload.len() as u64)));
        out.push(Buf::mem(payload));
        out.push(Buf::from_static(b"\r\n"));
        if end == body.len() {
            out.push(Buf::from_static(LAST_CHUNK));
            out.push(Buf::last());
        }
        // The write filter: one writev for the queued run.
        sent += send_all(sock, &mut out);
        at = end;
    }
    sent
}

/// Sends the whole chain on a blocking socket.
fn send_all(sock: &UnixStream, out: &mut Chain) -> u64 {
    let mut sent = 0;
    while !out.is_empty() {
        let s = send_chain(sock, out, &OPTS).expect("send_chain to the discard socket");
        assert!(!s.blocked, "a blocking socket reported EAGAIN");
        sent += s.bytes;
    }
    sent
}

/// The framed length of `total` payload bytes in chunks of `chunk`,
/// computed independently of `size_line`.
fn framed_len(total: usize, chunk: usize) -> u64 {
    let mut len = LAST_CHUNK.len();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        len += format!("{n:x}").len() + 2 + n + 2;
        left -= n;
    }
    len as u64
}

/// Checks the framing byte for byte on a small body before measuring, so a
/// bench that counts the right number of wrong bytes cannot pass.
fn check_framing() {
    let body = Bytes::from_static(b"0123456789abcdefghij");
    let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
    // 20 bytes of payload fit in the socket buffer: no reader thread needed.
    stream_body(&ours, &body, 8);
    drop(ours);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut theirs, &mut got).expect("read framed body");
    let want = b"8\r\n01234567\r\n8\r\n89abcdef\r\n4\r\nghij\r\n0\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    assert_eq!(framed_len(body.len(), 8), want.len() as u64);
}

fn chunked_stream(c: &mut Criterion) {
    check_framing();
    // Not all zeros, so nothing downstream could cheat on the content.
    let body = Bytes::from((0..TOTAL).map(|i| (i % 251) as u8).collect::<Vec<u8>>());

    let mut group = c.benchmark_group("chunked_write");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    // One iteration moves 16 MiB (milliseconds): flat sampling with few
    // samples keeps the whole run near 20 seconds.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    for chunk in CHUNK_SIZES {
        let (sock, reader) = discard_pair().expect("discard socket");
        let responses = Cell::new(0u64);
        group.bench_with_input(BenchmarkId::new("16MiB", format!("{}KiB", chunk >> 10)), &chunk, |b, &chunk| {
            b.iter(|| {
                responses.set(responses.get() + 1);
                stream_body(&sock, &body, chunk)
            })
        });
        drop(sock);
        let received = reader.join().expect("discard thread");
        let want = responses.get() * framed_len(TOTAL, chunk);
        assert_eq!(received, want, "{chunk}-byte chunks: the peer got {received} bytes, the framing says {want}");
    }
    group.finish();
}

criterion_group!(benches, chunked_stream);
criterion_main!(benches);
