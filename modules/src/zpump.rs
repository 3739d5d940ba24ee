//! The bounded streaming engine shared by the `gzip` and `gunzip` body
//! filters: a [`Pump`] feeds a response's bufs through a [`Codec`]
//! (deflate or inflate) and passes the output on in bounded amounts.
//!
//! What it promises the filter chain:
//!
//! * **bounded**: one pass produces about `number × size` bytes of output
//!   (`gzip_buffers` / `gunzip_buffers`), then hands them down; memory
//!   input is fed in [`PIECE`]-sized slices (split by reference, not
//!   copied) and file regions are read [`PIECE`] bytes at a time, so a
//!   large file never sits in memory whole;
//! * **backpressure**: when the filter below answers Again, the pump stops
//!   and keeps the rest of its input (references, not output) for the next
//!   call; it returns Again. If that rest holds the response's `last_buf`
//!   the producer is finished and will not call again, so the pump installs
//!   a [`DrainTask`] that calls the body filters with an empty chain when
//!   the connection drains (nginx's writer does this for every filter);
//! * **flush**: a `flush` buf becomes a codec sync flush, and the output up
//!   to it goes down at once with the flag, so streams are not held back;
//! * **last_buf**: the codec finishes (gzip trailer), the last output
//!   carries `last_buf`, and later input is ignored.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use sluice_core::buf::Payload;
use sluice_core::{Buf, Chain};
use sluice_http::{FilterError, FilterResult, FilterStatus, Flow, NextBody, Request, Resume, Task};

/// How much input is fed to the codec (and read from a file) at a time.
pub const PIECE: usize = 32 * 1024;

/// A compressor or decompressor, driven by a [`Pump`].
pub trait Codec {
    /// Feeds `input`; returns how much of it was consumed. May stop early
    /// once `out` holds `limit` bytes (inflate output can be far larger
    /// than its input); must consume something when `out` holds less.
    fn write(&mut self, input: &[u8], out: &mut OutBuf, limit: usize) -> Result<usize, String>;
    /// Makes everything fed so far decodable by the client (sync flush).
    fn flush(&mut self, out: &mut OutBuf) -> Result<(), String>;
    /// Ends the stream (trailer included).
    fn finish(&mut self, out: &mut OutBuf) -> Result<(), String>;
}

/// Output being built: the buffer being filled and the full ones ready to
/// go down.
#[derive(Debug)]
pub struct OutBuf {
    cur: Vec<u8>,
    size: usize,
    ready: Chain,
    ready_len: usize,
}

impl OutBuf {
    /// Output in buffers of `size` bytes.
    pub fn new(size: usize) -> OutBuf {
        OutBuf { cur: Vec::new(), size: size.max(64), ready: Chain::new(), ready_len: 0 }
    }

    /// The buffer to write into, with spare capacity: a full one is moved
    /// to the ready chain (as `Bytes`, without a copy) and a new one taken.
    pub fn room(&mut self) -> &mut Vec<u8> {
        if self.cur.len() == self.cur.capacity() {
            self.seal();
            self.cur = Vec::with_capacity(self.size);
        }
        &mut self.cur
    }

    /// Moves the buffer being filled, if it holds anything, to the ready
    /// chain.
    pub fn seal(&mut self) {
        if !self.cur.is_empty() {
            let full = std::mem::take(&mut self.cur);
            self.ready_len += full.len();
            self.ready.push(Buf::mem(full));
        }
    }

    /// Appends bytes as a buf of their own (headers, trailers).
    pub fn push(&mut self, bytes: Bytes) {
        self.seal();
        self.ready_len += bytes.len();
        self.ready.push(Buf::mem(bytes));
    }

    /// Output bytes held, ready or being filled.
    pub fn pending(&self) -> usize {
        self.ready_len + self.cur.len()
    }

    /// Seals the current buffer and appends a flag-only buf.
    fn push_flags(&mut self, flush: bool, last_buf: bool, last_in_chain: bool) {
        self.seal();
        let mut b = Buf::from_static(b"");
        (b.flush, b.last_buf, b.last_in_chain) = (flush, last_buf, last_in_chain);
        self.ready.push(b);
    }

    /// Takes the ready chain.
    fn take(&mut self) -> Chain {
        self.ready_len = 0;
        std::mem::take(&mut self.ready)
    }
}

/// A codec with its pending input and output.
#[derive(Debug)]
pub struct Pump<C> {
    /// The codec.
    pub codec: C,
    input: Chain,
    out: OutBuf,
    budget: usize,
    read_buf: Vec<u8>,
    /// `last_buf` was reached: the stream is finished.
    pub done: bool,
}

impl<C: Codec> Pump<C> {
    /// A pump producing at most about `number × size` bytes per pass.
    pub fn new(codec: C, number: usize, size: usize) -> Pump<C> {
        let size = size.max(64);
        Pump {
            codec,
            input: Chain::new(),
            out: OutBuf::new(size),
            budget: number.max(1) * size,
            read_buf: Vec::new(),
            done: false,
        }
    }

    /// True when no input waits.
    pub fn idle(&self) -> bool {
        self.input.is_empty()
    }

    /// Accepts `chain` and passes output down until the input is used up
    /// or the next filter answers Again.
    pub fn run(&mut self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        if self.done {
            // The trailer went out; nothing may follow it.
            return Ok(FilterStatus::Ok);
        }
        self.input.append(chain);
        loop {
            let out = self.pass().map_err(FilterError)?;
            if out.is_empty() {
                return Ok(FilterStatus::Ok);
            }
            if next.call(r, out)? == FilterStatus::Again {
                if !self.input.is_empty() && self.input.is_last() {
                    r.set_task(Box::new(DrainTask));
                }
                return Ok(FilterStatus::Again);
            }
            if self.input.is_empty() {
                return Ok(FilterStatus::Ok);
            }
        }
    }

    /// Queues input without processing it.
    pub fn push_input(&mut self, chain: Chain) {
        self.input.append(chain);
    }

    /// One bounded pass: the output it made (empty when all input is
    /// inside the codec or none was queued).
    pub fn pass(&mut self) -> Result<Chain, String> {
        self.produce()?;
        Ok(self.out.take())
    }

    /// Feeds input until the output budget is reached, a flag buf was
    /// handled (its output must go down now), or the input is used up.
    fn produce(&mut self) -> Result<(), String> {
        while self.out.pending() < self.budget {
            let Some(b) = self.input.bufs_mut().first_mut() else {
                break;
            };
            if !b.is_empty() {
                let used = feed(&mut self.codec, b, &mut self.out, self.budget, &mut self.read_buf)?;
                b.advance(used as u64);
                continue;
            }
            let Some(b) = self.input.pop_front() else { break };
            if b.last_buf {
                self.codec.finish(&mut self.out)?;
                self.out.push_flags(false, true, b.last_in_chain);
                self.done = true;
                self.input = Chain::new();
                break;
            }
            if b.flush {
                self.codec.flush(&mut self.out)?;
            }
            if b.flush || b.last_in_chain {
                self.out.push_flags(b.flush, false, b.last_in_chain);
                break;
            }
        }
        Ok(())
    }
}

/// Feeds up to [`PIECE`] bytes of `b` to the codec; returns how many it
/// consumed.
fn feed<C: Codec>(
    codec: &mut C,
    b: &Buf,
    out: &mut OutBuf,
    limit: usize,
    read_buf: &mut Vec<u8>,
) -> Result<usize, String> {
    let n = (b.len() as usize).min(PIECE);
    match &b.payload {
        Payload::Mem(m) => codec.write(&m[..n], out, limit),
        Payload::File(f) => {
            read_buf.resize(n, 0);
            f.file.read_exact_at(read_buf, f.offset).map_err(|e| format!("pread() failed ({e})"))?;
            codec.write(read_buf, out, limit)
        }
    }
}

/// Drives the body filters after the producer finished while a pump still
/// held input: on every drain of the connection it sends an empty chain
/// down the filters, so the pump goes on from where it stopped.
#[derive(Debug)]
pub struct DrainTask;

impl Task for DrainTask {
    fn resume(&mut self, r: &mut Request, why: Resume) -> Flow {
        if why != Resume::Writable {
            return Flow::Again;
        }
        match r.output(Chain::new()) {
            Ok(FilterStatus::Ok) => Flow::Done,
            Ok(FilterStatus::Again) => Flow::Again,
            Err(e) => {
                sluice_http::req_log!(r, sluice_core::log::Level::Error, "{}", e.0);
                Flow::Status(500)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_buf_rotates_full_buffers_without_losing_bytes() {
        let mut o = OutBuf::new(64);
        for i in 0..200u8 {
            o.room().push(i);
        }
        assert_eq!(o.pending(), 200);
        o.push(Bytes::from_static(b"tail"));
        let chain = o.take();
        let mut all = Vec::new();
        for b in chain.bufs() {
            assert!(b.len() <= 64);
            all.extend_from_slice(b.as_bytes().unwrap());
        }
        let mut want: Vec<u8> = (0..200u8).collect();
        want.extend_from_slice(b"tail");
        assert_eq!(all, want);
        assert_eq!(o.pending(), 0);
    }
}
