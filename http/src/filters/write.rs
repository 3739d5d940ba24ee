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
            // Flags were read above; an empty buf has nothing to send (and
            // a short queue stays inline in the chain).
            if b.is_empty() || header_only {
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

/// A response's `limit_rate` (valued once per request, or set by a
/// handler, e.g. the proxy's `X-Accel-Limit-Rate`), and the moment a
/// response held back by it may go on.
pub(crate) struct RateState {
    rate: u64,
    after: u64,
    delay: Option<std::time::Instant>,
    /// Set by a handler: it outlasts internal redirects and the new
    /// location's `limit_rate` (nginx's `limit_rate_set`). Otherwise the
    /// location it was valued for (by address).
    explicit: bool,
    location: usize,
}

/// The state valid in the current location: a handler's, or one valued
/// for this location.
fn current_rate_state(r: &Request) -> Option<&RateState> {
    let here = std::sync::Arc::as_ptr(&r.loc) as usize;
    r.lasting_ctx::<_, _, _, RateState>(&crate::core_module::CORE).filter(|s| s.explicit || s.location == here)
}

/// A size directive's value (`limit_rate 10k`, variables allowed); 0 when
/// unset or not a size.
fn conf_size(r: &Request, v: Option<&crate::variables::ComplexValue>) -> u64 {
    let text = v.map(|v| v.eval(r)).unwrap_or_default();
    std::str::from_utf8(&text).ok().and_then(sluice_core::conf::value::parse_size).unwrap_or(0)
}

fn rate_state(r: &mut Request) -> Option<&mut RateState> {
    use crate::core_module::CORE;
    if current_rate_state(r).is_none() {
        let core = r.core_loc();
        let rate = core.limit_rate.as_ref()?;
        let (rate, after) = (conf_size(r, Some(rate)), conf_size(r, core.limit_rate_after.as_ref()));
        let here = std::sync::Arc::as_ptr(&r.loc) as usize;
        r.set_lasting_ctx(&CORE, RateState { rate, after, delay: None, explicit: false, location: here });
    }
    r.lasting_ctx_mut::<_, _, _, RateState>(&CORE)
}

/// When a response held back by `limit_rate` may go on.
pub(crate) fn rate_delay(r: &Request) -> Option<std::time::Instant> {
    r.lasting_ctx::<_, _, _, RateState>(&crate::core_module::CORE).and_then(|s| s.delay)
}

impl Request {
    /// The response's rate limit in bytes per second, 0 for none
    /// (`$limit_rate`): one a handler set, else the location's
    /// `limit_rate`.
    pub fn limit_rate(&self) -> u64 {
        match current_rate_state(self) {
            Some(s) => s.rate,
            None => conf_size(self, self.core_loc().limit_rate.as_ref()),
        }
    }

    /// Limits this response to `rate` bytes per second (0: no limit), as
    /// `limit_rate` does, whatever the location says from now on (also
    /// after an internal redirect); `limit_rate_after` still applies.
    pub fn set_limit_rate(&mut self, rate: u64) {
        let after = rate_state(self).map_or(0, |s| s.after);
        let state = RateState { rate, after, delay: None, explicit: true, location: 0 };
        self.set_lasting_ctx(&crate::core_module::CORE, state);
    }
}

/// How many bytes `limit_rate` lets go now (`None`: no limit), as nginx
/// reckons it: the rate times the seconds since the request began (plus
/// one), less what was sent beyond `limit_rate_after`. At none, the
/// response waits (a timer, not the socket) until a byte's worth of time
/// has passed.
fn rate_budget(r: &mut Request) -> Option<u64> {
    let (start, sent) = (r.start, r.bytes_sent);
    let s = rate_state(r)?;
    if s.rate == 0 {
        return None;
    }
    let now = sluice_core::event::now();
    let secs = now.saturating_duration_since(start).as_secs() as i128 + 1;
    let allowed = s.rate as i128 * secs - (sent as i128 - s.after as i128);
    if allowed > 0 {
        s.delay = None;
        return Some(allowed.min(u64::MAX as i128) as u64);
    }
    let wait = std::time::Duration::from_millis(((-allowed) as u64).saturating_mul(1000) / s.rate + 1);
    s.delay = Some(now + wait);
    Some(0)
}

/// Sends what the connection has queued. Again when the socket is full
/// (or `limit_rate` holds the response back).
pub(crate) fn flush_conn(r: &mut Request) -> FilterResult {
    let budget = rate_budget(r);
    if budget == Some(0) {
        return Ok(FilterStatus::Again);
    }
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
    let sent = r
        .conn
        .send_pending(sendfile, budget.unwrap_or(0))
        .map_err(|e| FilterError(format!("writev() failed ({e})")))?;
    r.bytes_sent += sent;
    if budget.is_some() && !r.conn.out.is_empty() && !r.conn.write_blocked {
        // The rate's share went out: wait for the next (sets the timer).
        rate_budget(r);
    }
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
    pub(crate) fn send_pending(&mut self, sendfile: bool, limit: u64) -> std::io::Result<u64> {
        if self.out.is_empty() {
            self.write_blocked = false;
            return Ok(0);
        }
        let opts = SendOpts { sendfile, limit };
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
