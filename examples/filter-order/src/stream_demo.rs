//! The `stream_demo` module: a content handler that streams generated data.
//!
//! ```text
//! location /stream {
//!     stream_demo 64 64k;   # 64 chunks of 64 KiB
//! }
//! ```
//!
//! `stream_demo N SIZE` (location only; SIZE takes `k` and `m`) makes the
//! location answer GET and HEAD with `200`, `Content-Type: text/plain` and
//! no Content-Length, so an HTTP/1.1 response goes out chunked and an
//! HTTP/1.0 one ends with the connection. Other methods get 405. The body
//! is N pieces of [`demo_chunk`], each sent by its own `output()` call with
//! `flush` set, the last with `last_buf` (N = 0 sends an empty body).
//!
//! Backpressure: when `output` answers Again the piece was accepted but the
//! socket is full, so the handler stores its progress in a [`Task`] and
//! returns `Flow::Again`; the connection resumes the task with
//! `Resume::Writable` once the queued output has drained. At most one piece
//! is queued beyond what the socket took. The task is the only
//! per-request state.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{value, SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_core::{log_error, Buf, Chain};
use sluice_http::parse::Method;
use sluice_http::{
    AnyConf, ConfKey, FilterStatus, Flow, HttpConfCx, HttpModule, ModuleIndex, PhaseHandler, Request, Resume, Task,
};

/// Location conf: what `stream_demo` said (kept to reject a duplicate; the
/// handler carries its own copy).
#[derive(Debug, Default)]
pub struct StreamDemoLocConf {
    demo: Option<(u64, usize)>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), StreamDemoLocConf> = ConfKey::new();

/// The `stream_demo` module.
#[derive(Debug)]
pub struct StreamDemoModule;

/// The most chunks one response may have.
pub const MAX_CHUNKS: u64 = 1_000_000;
/// The largest chunk.
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;

/// Piece `index` of a demo stream: `size` bytes of pseudo-random lowercase
/// letters (xorshift64 seeded by the index, so every piece differs and a
/// reordering shows), with a newline as every 64th byte so that a terminal
/// shows lines.
pub fn demo_chunk(index: u64, size: usize) -> Bytes {
    // An odd multiplier keeps the seed non-zero, which xorshift needs.
    let mut x = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(size);
    for j in 0..size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(if j % 64 == 63 { b'\n' } else { b'a' + (x % 26) as u8 });
    }
    Bytes::from(out)
}

/// Parses `N SIZE`: a chunk count (0 ..= [`MAX_CHUNKS`]) and a chunk size
/// (1 ..= [`MAX_CHUNK_SIZE`], `k`/`m` allowed).
pub fn parse_args(count: &str, size: &str) -> Result<(u64, usize), String> {
    let n = value::parse_number(count)
        .filter(|&n| n <= MAX_CHUNKS)
        .ok_or_else(|| format!("invalid number of chunks \"{count}\""))?;
    let s = value::parse_size(size)
        .filter(|&s| (1..=MAX_CHUNK_SIZE as u64).contains(&s))
        .ok_or_else(|| format!("invalid chunk size \"{size}\""))?;
    Ok((n, s as usize))
}

fn set_stream_demo(cx: &mut HttpConfCx, c: &mut StreamDemoLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.demo.is_some() {
        return Err(duplicate(stmt).into());
    }
    let (count, size) = parse_args(stmt.arg(0), stmt.arg(1))?;
    c.demo = Some((count, size));
    cx.set_content_handler(Arc::new(StreamDemoHandler { count, size }))
}

/// The content handler a `stream_demo` location gets.
#[derive(Debug)]
struct StreamDemoHandler {
    count: u64,
    size: usize,
}

impl PhaseHandler for StreamDemoHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        if !matches!(r.method(), Method::Get | Method::Head) {
            return Flow::Status(405);
        }
        if let Err(status) = r.discard_body() {
            return Flow::Status(status);
        }
        r.headers_out.status = 200;
        r.headers_out.content_type = Some(Bytes::from_static(b"text/plain"));
        r.headers_out.content_length = None;
        if let Err(e) = r.send_header() {
            log_error!(LogLevel::Error, r.log_id(), "stream_demo: sending the header failed: {}", e.0);
            return Flow::Status(500);
        }
        if r.header_only || self.count == 0 {
            return send_last(r);
        }
        let mut task = StreamTask { next: 0, count: self.count, size: self.size };
        match task.pump(r) {
            Flow::Again => {
                r.set_task(Box::new(task));
                Flow::Again
            }
            flow => flow,
        }
    }
}

fn send_last(r: &mut Request) -> Flow {
    match r.output(Chain::one(Buf::last())) {
        // Again: the connection sends the rest before it completes.
        Ok(_) => Flow::Done,
        Err(e) => {
            log_error!(LogLevel::Error, r.log_id(), "stream_demo: output failed: {}", e.0);
            Flow::Status(500)
        }
    }
}

/// A stream in progress: the next piece to send.
#[derive(Debug)]
struct StreamTask {
    next: u64,
    count: u64,
    size: usize,
}

impl StreamTask {
    /// Sends pieces until all are out (`Done`) or the socket is full
    /// (`Again`, with `next` saying where to go on).
    fn pump(&mut self, r: &mut Request) -> Flow {
        while self.next < self.count {
            let k = self.next;
            let mut buf = Buf::mem(demo_chunk(k, self.size)).with_flush();
            if k + 1 == self.count {
                buf = buf.with_last();
            }
            self.next += 1;
            match r.output(Chain::one(buf)) {
                Ok(FilterStatus::Ok) => {}
                // The last piece was accepted: the connection flushes it.
                Ok(FilterStatus::Again) if self.next == self.count => {}
                Ok(FilterStatus::Again) => {
                    log_error!(LogLevel::Debug, r.log_id(), "stream_demo: output full after chunk {}, waiting", k);
                    return Flow::Again;
                }
                Err(e) => {
                    log_error!(LogLevel::Error, r.log_id(), "stream_demo: output failed: {}", e.0);
                    return Flow::Status(500);
                }
            }
        }
        Flow::Done
    }
}

impl Task for StreamTask {
    fn resume(&mut self, r: &mut Request, why: Resume) -> Flow {
        if why != Resume::Writable {
            return Flow::Again;
        }
        log_error!(LogLevel::Debug, r.log_id(), "stream_demo: writable, resuming at chunk {}", self.next);
        self.pump(r)
    }
}

impl HttpModule for StreamDemoModule {
    fn name(&self) -> &'static str {
        "stream_demo"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new("stream_demo", C::HTTP_LOC, Args::TAKE2, Level::Loc, custom(set_stream_demo))]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(StreamDemoLocConf::default())
    }

    fn merge_loc_conf(&self, _parent: &dyn Any, _child: &mut dyn Any) -> Result<(), String> {
        // Not inherited, as a content handler is not: nothing to merge.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic_sized_and_distinct() {
        let a = demo_chunk(0, 200);
        assert_eq!(a.len(), 200);
        assert_eq!(a, demo_chunk(0, 200));
        assert_eq!(&demo_chunk(0, 100)[..], &a[..100], "a shorter piece is a prefix");
        assert_ne!(a, demo_chunk(1, 200));
        assert_eq!(a[63], b'\n');
        assert_eq!(a[127], b'\n');
        assert!(a.iter().enumerate().all(|(j, &c)| j % 64 == 63 || c.is_ascii_lowercase()), "{a:?}");
    }

    #[test]
    fn args_take_counts_and_sizes() {
        assert_eq!(parse_args("3", "16"), Ok((3, 16)));
        assert_eq!(parse_args("0", "64k"), Ok((0, 65536)));
        assert_eq!(parse_args("64", "1m"), Ok((64, 1 << 20)));
    }

    #[test]
    fn args_out_of_bounds_are_rejected_with_the_value() {
        assert_eq!(parse_args("x", "16"), Err("invalid number of chunks \"x\"".to_string()));
        assert_eq!(parse_args("1000001", "16"), Err("invalid number of chunks \"1000001\"".to_string()));
        assert_eq!(parse_args("1", "0"), Err("invalid chunk size \"0\"".to_string()));
        assert_eq!(parse_args("1", "17m"), Err("invalid chunk size \"17m\"".to_string()));
        assert_eq!(parse_args("1", "-1"), Err("invalid chunk size \"-1\"".to_string()));
    }
}
