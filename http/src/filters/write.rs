//! The write filter: the bottom body filter. It queues output on the
//! connection and sends it — one `writev` for the memory run, `sendfile`
//! for file regions — when there is at least `postpone_output` bytes, a
//! `flush`, or the `last_buf`. When the socket refuses more and output is
//! still queued it answers Again: the producer waits for `Resume::Writable`.

use sluice_core::io::{send_chain, SendOpts};
use sluice_core::Chain;

use crate::module::{BodyFilter, FilterError, FilterResult, FilterStatus, NextBody};
use crate::request::Request;

/// The write filter.
#[derive(Debug)]
pub struct WriteFilter;

impl BodyFilter for WriteFilter {
    fn body_filter(&self, r: &mut Request, chain: Chain, _next: NextBody<'_>) -> FilterResult {
        let last = chain.is_last();
        let flush = chain.wants_flush();
        let header_only = r.header_only;
        for b in chain {
            if header_only && !b.is_empty() {
                continue;
            }
            r.conn.out.push(b);
        }
        if last {
            r.last_sent = true;
        }
        let pending = r.conn.out.len();
        let postpone = r.core_loc().postpone_output.unwrap_or(1460);
        if !flush && pending < postpone {
            return Ok(FilterStatus::Ok);
        }
        flush_conn(r)
    }
}

/// Sends what the connection has queued. Again when the socket is full.
pub(crate) fn flush_conn(r: &mut Request) -> FilterResult {
    let core = r.core_loc();
    let sendfile = core.sendfile.unwrap_or(false);
    // tcp_nopush: with sendfile, hold partial frames (TCP_CORK) while a
    // response with file data goes out, so head and file fill full packets;
    // TCP_NODELAY and TCP_CORK exclude each other, as in nginx.
    if sendfile && core.tcp_nopush.unwrap_or(false) && !r.conn.corked && r.conn.out.iter().any(|b| !b.in_memory()) {
        if r.conn.nodelay {
            let _ = sluice_core::io::set_nodelay(&r.conn.stream, false);
            r.conn.nodelay = false;
        }
        if sluice_core::io::set_cork(&r.conn.stream, true).is_ok() {
            r.conn.corked = true;
        }
    }
    let sent = r.conn.send_pending(sendfile).map_err(|e| FilterError(format!("writev() failed ({e})")))?;
    r.bytes_sent += sent;
    if r.conn.out.is_empty() {
        if r.conn.corked && r.last_sent {
            let _ = sluice_core::io::set_cork(&r.conn.stream, false);
            r.conn.corked = false;
        }
        Ok(FilterStatus::Ok)
    } else {
        Ok(FilterStatus::Again)
    }
}

impl crate::request::Conn {
    /// Sends queued output until done or the socket is full; the number of
    /// payload bytes sent.
    pub(crate) fn send_pending(&mut self, sendfile: bool) -> std::io::Result<u64> {
        if self.out.is_empty() {
            self.write_blocked = false;
            return Ok(0);
        }
        let opts = SendOpts { sendfile, limit: 0 };
        match send_chain(&self.stream, &mut self.out, &opts) {
            Ok(s) => {
                self.write_blocked = s.blocked;
                // Flag-only bufs left after the payload went out.
                if self.out.is_empty() {
                    self.out = Chain::new();
                }
                Ok(s.bytes)
            }
            Err(e) => {
                self.broken = true;
                self.out = Chain::new();
                Err(e)
            }
        }
    }
}
