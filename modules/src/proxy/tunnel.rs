//! Upgraded connections (`101 Switching Protocols`, e.g. WebSocket): after
//! the upstream agrees to the client's `Upgrade`, the proxy copies bytes
//! both ways until either side closes or nothing moves for
//! `proxy_read_timeout`. Each direction holds at most `proxy_buffer_size`
//! in flight: it stops reading its source while the other side has not
//! taken what it got.

use std::time::Duration;

use bytes::Bytes;
use sluice_core::io::{send_chain, SendOpts};
use sluice_core::log::Level;
use sluice_core::{Buf, Chain};
use sluice_http::{Flow, Request};

use super::head::UpstreamHead;
use super::task::{ProxyTask, State};

/// Bytes from the client waiting to go upstream.
#[derive(Default)]
pub(crate) struct Tunnel {
    to_upstream: Chain,
    client_done: bool,
}

/// The upstream answered 101: switch when the client asked for it.
pub(super) fn start(task: &mut ProxyTask, r: &mut Request, h: UpstreamHead) -> Flow {
    if r.header("upgrade").is_none() {
        // nginx treats a 101 the client did not ask for as an answer
        // without a body.
        super::response::headers_out(r, &h);
        task.release_connection(r);
        return match r.send_header() {
            Ok(_) => Flow::Done,
            Err(_) => Flow::Status(499),
        };
    }
    super::response::headers_out(r, &h);
    r.keepalive = false;
    task.upstream_reusable = false;
    if r.send_header().is_err() {
        return task.give_up(r, 499);
    }
    // The head goes out now: the client waits for it before it talks.
    let _ = r.output(Chain::one(Buf::flush()));
    r.set_reads_client(true);
    task.tunnel = Some(Tunnel::default());
    task.state = State::Tunnel;
    // Bytes the upstream sent right after its head belong to the tunnel.
    if !task.rbuf.is_empty() {
        let early = task.rbuf.split().freeze();
        if r.output(Chain::one(Buf::mem(early).with_flush())).is_err() {
            return task.give_up(r, 499);
        }
    }
    run(task, r)
}

/// Moves bytes both ways as far as possible now.
pub(super) fn run(task: &mut ProxyTask, r: &mut Request) -> Flow {
    let limit = task.conf(r).buffer_size() as usize;
    let idle = task.conf(r).read_timeout.unwrap_or(Duration::from_secs(60));
    loop {
        let mut moved = false;
        // Client → upstream.
        let Some(t) = task.tunnel.as_mut() else { return Flow::Done };
        if t.to_upstream.is_empty() && !t.client_done {
            match r.read_client(limit) {
                Ok(Some(b)) if b.is_empty() => t.client_done = true,
                Ok(Some(b)) => {
                    t.to_upstream.push(Buf::mem(b));
                    moved = true;
                }
                Ok(None) => {}
                Err(_) => t.client_done = true,
            }
        }
        if !t.to_upstream.is_empty() {
            let Some(s) = task.stream.as_ref() else { return Flow::Done };
            match send_chain(s, &mut t.to_upstream, &SendOpts::default()) {
                Ok(sent) => moved |= sent.bytes > 0,
                Err(e) => {
                    let e = super::task::os(&e);
                    task.log(r, Level::Error, format_args!("send() failed ({e}) while proxying upgraded connection"));
                    return close(task, r);
                }
            }
        }
        let client_done = t.client_done && t.to_upstream.is_empty();
        // Upstream → client.
        if r.output_pending_mem() < limit as u64 {
            match task.read_some(limit as u64) {
                Ok(Some(0)) => return close(task, r),
                Ok(Some(_)) => {
                    let b: Bytes = task.rbuf.split().freeze();
                    if r.output(Chain::one(Buf::mem(b).with_flush())).is_err() {
                        return task.give_up(r, 499);
                    }
                    moved = true;
                }
                Ok(None) => {}
                Err(_) => return close(task, r),
            }
        }
        if client_done {
            return close(task, r);
        }
        if !moved {
            task.deadline = Some(sluice_core::event::now() + idle);
            return Flow::Again;
        }
    }
}

/// One side closed: so does the other.
fn close(task: &mut ProxyTask, r: &mut Request) -> Flow {
    task.close_upstream(r);
    r.set_reads_client(false);
    task.deadline = None;
    task.tunnel = None;
    Flow::Done
}
