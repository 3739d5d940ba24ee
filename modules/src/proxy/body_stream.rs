//! `proxy_request_buffering off`: the request body goes upstream as it
//! arrives. A body with a length goes as it came; a chunked one (HTTP/1.1
//! upstreams only; with HTTP/1.0 the body is read whole first, as nginx
//! does) is sent chunked. Once a byte of the body went out, the request
//! cannot move to another upstream.

use bytes::Bytes;
use sluice_core::{Buf, Chain};
use sluice_http::{Flow, Request};

use super::build::BodyFrame;
use super::task::{request_chain, ProxyTask, State, Target};

/// Where a streamed body stands.
pub(crate) struct BodyStream {
    chunked: bool,
    /// All of it was queued for sending (the last chunk included).
    done: bool,
    /// Some of it was taken from the client (retrying is impossible).
    pub(crate) taken: bool,
}

/// Starts a request whose body streams.
pub(super) fn begin_streaming(r: &mut Request, target: Target) -> Flow {
    if let Err(status) = r.stream_body() {
        return Flow::Status(status);
    }
    let frame = match r.body.declared_length() {
        Some(n) => BodyFrame::Length(n),
        None => BodyFrame::Chunked,
    };
    let mut task = ProxyTask::new(r, target);
    let chunked = frame == BodyFrame::Chunked;
    // What already arrived goes with the head, in one write (and stays in
    // the request kept for retries, so it may still go to another peer).
    let (preread, complete) = match r.take_body_chunk() {
        Ok(x) => x,
        Err(status) => return Flow::Status(status),
    };
    let mut body = Chain::new();
    frame_into(&mut body, preread, chunked, complete);
    task.request = request_chain(r, &task.target, frame, body);
    task.streaming = Some(BodyStream { chunked, done: complete, taken: false });
    task.kick(r)
}

/// Appends a piece of the body, chunk-framed (by the chunked filter's own
/// framing) when the upstream gets it chunked, with the last chunk once the
/// body is complete.
fn frame_into(out: &mut Chain, mut piece: Chain, chunked: bool, complete: bool) {
    if !chunked {
        out.append(piece);
        return;
    }
    if complete {
        piece.push(Buf::last());
    }
    out.append(sluice_http::filters::chunked::frame(piece, || Bytes::from_static(b"0\r\n\r\n")));
}

/// The queued request went out: queue what arrived of the body since, or
/// go on to read the response once all of it was sent. `None`: the state
/// machine goes on (more to send, or the response to read).
pub(super) fn after_send(task: &mut ProxyTask, r: &mut Request) -> Option<Flow> {
    loop {
        let s = task.streaming.as_mut()?;
        if s.done {
            task.state = State::ReadingHead;
            let t = task.conf(r).read_timeout.unwrap_or(std::time::Duration::from_secs(60));
            task.deadline = Some(sluice_core::event::now() + t);
            return None;
        }
        let (chain, complete) = match r.take_body_chunk() {
            Ok(x) => x,
            Err(status) => return Some(task.give_up(r, status)),
        };
        if chain.has_payload() {
            s.taken = true;
        }
        frame_into(&mut task.to_send, chain, s.chunked, complete);
        if complete {
            s.done = true;
        }
        if task.to_send.is_empty() && !complete {
            // Nothing new from the client yet: `Resume::BodyRead` comes
            // when it sends more (its client_body_timeout runs meanwhile).
            task.deadline = None;
            return Some(Flow::Again);
        }
        if !task.to_send.is_empty() {
            let t = task.conf(r).send_timeout.unwrap_or(std::time::Duration::from_secs(60));
            task.deadline = Some(sluice_core::event::now() + t);
            return None;
        }
    }
}
