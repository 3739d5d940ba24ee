//! Streaming the upstream's body to the client with bounded memory.
//!
//! Every read is handed to the output filters at once (flushed, so nothing
//! waits for `postpone_output`); while the client connection is slow, the
//! output it holds grows, and the proxy reads only while that is under its
//! bound: all of `proxy_buffers` with buffering on, `proxy_buffer_size`
//! with it off. With buffering on, reads beyond the memory bound go to the
//! temp file until `proxy_max_temp_file_size`. What was written reaches
//! the client's output at once as a file region, except while that queue
//! is long (a slow client): then the file's backlog is two offsets, not
//! bufs, handed over later as one region, so its size costs no memory.
//! While there is a backlog every read goes to the file, behind it. At the bound
//! the proxy stops reading: the upstream's socket fills and TCP pushes
//! back. The client draining resumes it.

use std::time::Duration;

use bytes::Bytes;
use sluice_core::log::Level;
use sluice_core::{Buf, Chain};
use sluice_http::chunked_decode::Decoded;
use sluice_http::{Flow, Request};

use super::pool;
use super::spill::Spill;
use super::task::{Framing, ProxyTask, READ_MAX};

/// Bufs the client's queue may hold before the temp file's backlog waits
/// (see `hand_over_spill`): about 40 KiB of them.
const HELD_BUFS: usize = 1024;

/// `proxy_max_temp_file_size` default.
const MAX_TEMP_DEFAULT: u64 = 1024 * 1024 * 1024;

impl ProxyTask {
    /// Reads and forwards the body as far as the bounds allow now.
    pub(super) fn pump(&mut self, r: &mut Request) -> Flow {
        // Body bytes that came with the head are decoded before any read.
        let mut fresh = !self.rbuf.is_empty();
        loop {
            if self.body_done {
                return self.finish(r);
            }
            if let Err(flow) = self.hand_over_spill(r) {
                return flow;
            }
            let (budget, to_file) = self.budget(r);
            if fresh {
                fresh = false;
                if let Err(flow) = self.decode_and_forward(r, to_file) {
                    return flow;
                }
                continue;
            }
            if budget == 0 {
                // Wait for the client to drain (its send_timeout runs).
                self.deadline = None;
                return Flow::Again;
            }
            match self.read_some(budget.min(READ_MAX)) {
                Ok(Some(0)) => {
                    if matches!(self.framing, Framing::Close) {
                        self.body_done = true;
                        self.upstream_reusable = false;
                        continue;
                    }
                    self.log(
                        r,
                        Level::Error,
                        format_args!("upstream prematurely closed connection while reading upstream"),
                    );
                    return self.abort(r);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    let t = self.conf(r).read_timeout.unwrap_or(Duration::from_secs(60));
                    self.deadline = Some(sluice_core::event::now() + t);
                    return Flow::Again;
                }
                Err(e) => {
                    let e = super::task::os(&e);
                    self.log(r, Level::Error, format_args!("recv() failed ({e}) while reading upstream"));
                    return self.abort(r);
                }
            }
            if let Err(flow) = self.decode_and_forward(r, to_file) {
                return flow;
            }
        }
    }

    /// Decodes what was read and hands it on; the body's last bytes go
    /// with the end of the response.
    fn decode_and_forward(&mut self, r: &mut Request, to_file: bool) -> Result<(), Flow> {
        let chain = self.decode(r, to_file)?;
        if self.body_done {
            return Err(self.finish_with(r, chain));
        }
        self.hand_over_spill(r)?;
        if chain.has_payload() {
            self.forward(r, chain)?;
        }
        Ok(())
    }

    /// Hands the temp file's whole backlog to the client's output, as one
    /// region, unless the output's queue is long and memory is full.
    fn hand_over_spill(&mut self, r: &mut Request) -> Result<(), Flow> {
        if self.spill.as_ref().is_none_or(|s| s.backlog() == 0) {
            return Ok(());
        }
        // Held back only while the client's queue is long in bufs (each
        // region handed over costs one, plus the chunked filter's framing)
        // and memory is full. A client keeping up gets each read's region
        // at once, and memory reads go on as soon as there is room: holding
        // earlier makes large regions that memory then waits behind, and
        // more of the body goes through the file (2 GiB to a fast client:
        // 1.2 s instead of 0.75 s). A slow client gets the backlog later as
        // one region, so its queue stays short however large the file grows.
        if r.output_pending_bufs() >= HELD_BUFS && self.mem_room(r) == 0 {
            return Ok(());
        }
        if let Some(region) = self.spill.as_mut().and_then(|s| s.take_backlog()) {
            self.forward(r, Chain::one(region))?;
        }
        Ok(())
    }

    /// How much more of the body may be held in memory now: all of
    /// `proxy_buffers` with buffering on, `proxy_buffer_size` with it off.
    fn mem_room(&self, r: &Request) -> u64 {
        let conf = self.conf(r);
        let limit = if self.buffering {
            let (n, size) = conf.buffers();
            n * size
        } else {
            conf.buffer_size()
        };
        limit.saturating_sub(r.output_pending_mem() + self.rbuf.len() as u64)
    }

    /// How much may be read now, and whether it goes to the temp file.
    fn budget(&mut self, r: &Request) -> (u64, bool) {
        let room = self.mem_room(r);
        let backlog = self.spill.as_ref().map_or(0, |s| s.backlog());
        // Memory reads go out at once: never ahead of the file's backlog.
        if room > 0 && backlog == 0 {
            // Behind a queue, in pieces of one buffer (at least 64 KiB, so
            // small buffers do not mean small reads): each read's
            // allocation is freed once its bytes are sent, rather than
            // kept whole by a small part still waiting.
            let (_, size) = self.conf(r).buffers();
            let piece = if r.output_pending_bufs() > 0 { size.max(64 * 1024) } else { room };
            return (room.min(piece), false);
        }
        let conf = self.conf(r);
        if !self.buffering {
            return (0, false);
        }
        let max_file = conf.max_temp_file_size.unwrap_or(MAX_TEMP_DEFAULT);
        let written = self.spill.as_ref().map_or(0, |s| s.written);
        if written >= max_file {
            return (0, false);
        }
        let (_, size) = conf.buffers();
        let chunk = conf.temp_file_write_size.unwrap_or(2 * size.max(conf.buffer_size()));
        (chunk.min(max_file - written), true)
    }

    /// Turns what was read into payload bufs, by the upstream's framing.
    fn decode(&mut self, r: &mut Request, to_file: bool) -> Result<Chain, Flow> {
        let mut out = Chain::new();
        let mut payload: smallvec::SmallVec<[Bytes; 4]> = smallvec::SmallVec::new();
        match &mut self.framing {
            Framing::None => self.body_done = true,
            Framing::Length(rem) => {
                let n = (*rem).min(self.rbuf.len() as u64);
                payload.push(self.rbuf.split_to(n as usize).freeze());
                *rem -= n;
                if *rem == 0 {
                    self.body_done = true;
                }
            }
            Framing::Close => payload.push(self.rbuf.split().freeze()),
            Framing::Chunked(d) => loop {
                match d.decode(&mut self.rbuf) {
                    Ok(Decoded::Data(b)) => payload.push(b),
                    Ok(Decoded::Done) => {
                        self.body_done = true;
                        break;
                    }
                    Ok(Decoded::NeedMore) => break,
                    Err(_) => {
                        self.log(
                            r,
                            Level::Error,
                            format_args!("upstream sent invalid chunked response while reading upstream"),
                        );
                        return Err(self.abort(r));
                    }
                }
            },
        }
        let len: u64 = payload.iter().map(|b| b.len() as u64).sum();
        self.log_try(r, |t| t.length += len);
        for b in payload.into_iter().filter(|b| !b.is_empty()) {
            if to_file {
                // Without proxy_temp_path, beside the request bodies.
                let dir = self.conf(r).temp_path.clone().unwrap_or_else(|| r.body_temp_dir());
                let spill = match self.spill.take() {
                    Some(s) => Ok(s),
                    None => Spill::create(&dir).inspect(|s| {
                        // nginx's notice that a response outgrew the buffers.
                        let path = s.path.display();
                        self.log(
                            r,
                            Level::Warn,
                            format_args!(
                                "an upstream response is buffered to a temporary file {path} while reading upstream"
                            ),
                        );
                    }),
                };
                match spill.and_then(|mut s| s.append(&b).map(|()| s)) {
                    Ok(s) => {
                        // Kept as backlog, handed over by hand_over_spill.
                        self.spill = Some(s);
                        continue;
                    }
                    Err(e) => {
                        let e = super::task::os(&e);
                        self.log(
                            r,
                            Level::Crit,
                            format_args!("write() to a temp file in \"{}\" failed ({e})", dir.display()),
                        );
                        return Err(self.abort(r));
                    }
                }
            }
            out.push(Buf::mem(b));
        }
        if self.body_done && !self.rbuf.is_empty() {
            // More than the framing announced: never reuse the connection.
            self.log(
                r,
                Level::Warn,
                format_args!("upstream sent more data than specified in \"Content-Length\" header"),
            );
            self.upstream_reusable = false;
            self.rbuf.clear();
        }
        Ok(out)
    }

    /// Hands a chain to the client's output filters.
    fn forward(&mut self, r: &mut Request, mut chain: Chain) -> Result<(), Flow> {
        if let Some(b) = chain.bufs_mut().last_mut() {
            b.flush = true;
        }
        match r.output(chain) {
            Ok(_) => Ok(()),
            Err(e) => {
                sluice_http::req_log!(r, Level::Info, "{}", e.0);
                Err(self.give_up(r, 499))
            }
        }
    }

    fn finish(&mut self, r: &mut Request) -> Flow {
        self.finish_with(r, Chain::new())
    }

    /// The body is complete: the upstream connection goes back to the pool
    /// (or closes), the last bufs go out.
    fn finish_with(&mut self, r: &mut Request, mut chain: Chain) -> Flow {
        self.release_connection(r);
        self.deadline = None;
        // What the temp file still holds goes first, as one region: the
        // output takes it at the client's pace with nothing more to read.
        if let Some(region) = self.spill.as_mut().and_then(|s| s.take_backlog()) {
            chain.push_front(region);
        }
        chain.push(Buf::last());
        match r.output(chain) {
            Ok(_) => Flow::Done,
            Err(e) => {
                sluice_http::req_log!(r, Level::Info, "{}", e.0);
                Flow::Status(499)
            }
        }
    }

    /// Parks the upstream connection for reuse when it is safe.
    pub(super) fn release_connection(&mut self, r: &mut Request) {
        // Only once the whole body was read: a response cut short (an
        // intercepted error, X-Accel-Redirect) leaves bytes on the wire.
        let reusable = self.upstream_reusable
            && (self.body_done || matches!(self.framing, Framing::None))
            && self.rbuf.is_empty()
            && self.to_send.is_empty();
        let now = sluice_core::event::now();
        self.record_end(r);
        self.finish_peer(r, false);
        let (Some(s), Some(route)) = (self.stream.take(), self.route.take()) else { return };
        // A parked connection stays registered, its route parked (its
        // events are dropped while idle); one that is not kept is closed,
        // which takes it out of the poll.
        if let (true, Some(i)) = (reusable, self.peer) {
            route.park();
            pool::put(&self.target.group, i, s, route, self.conn_created, self.conn_requests + 1, now);
        }
    }
}
