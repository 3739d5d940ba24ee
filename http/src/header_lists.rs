//! Per-worker pools of emptied header lists.
//!
//! Every request had two lists of its own: the request head's fields and
//! the response's extra headers (`ETag`, `Accept-Ranges`, `add_header`...),
//! each a `malloc` when filled and a `free` when the request ended, with a
//! reallocation when the response list outgrew its first four slots. A
//! finished request hands both lists back here, emptied and with their
//! capacity, and the next request fills them again, as the read-buffer pool
//! (`read_buf`) does for read buffers. The pools are bounded in count and
//! in capacity, so they hold at most `POOLED` × `MAX_KEPT` entries each.

use std::thread::LocalKey;

use bytes::Bytes;

use crate::parse::Header;
use sluice_core::reuse::Spares;

/// Lists kept per worker and per kind.
const POOLED: usize = 16;
/// A list that grew past this many entries is freed, not kept.
const MAX_KEPT: usize = 32;
/// Room a response list starts with: enough for a static file's `ETag`
/// and `Accept-Ranges` plus a few `add_header`s without growing.
const RESPONSE_START: usize = 8;

type Pool<T> = Spares<Vec<T>>;

thread_local! {
    static REQUEST: Pool<Header> = const { Spares::new(POOLED) };
    static RESPONSE: Pool<(Bytes, Bytes)> = const { Spares::new(POOLED) };
}

fn give<T: 'static>(pool: &'static LocalKey<Pool<T>>, mut list: Vec<T>) {
    if list.capacity() == 0 || list.capacity() > MAX_KEPT {
        return;
    }
    list.clear();
    pool.with(|p| p.keep(list));
}

/// An empty list for a request head's fields.
pub(crate) fn request() -> Vec<Header> {
    REQUEST.with(Spares::take).unwrap_or_default()
}

/// An empty list for a response's headers, with room for a few.
pub(crate) fn response() -> Vec<(Bytes, Bytes)> {
    RESPONSE.with(Spares::take).unwrap_or_else(|| Vec::with_capacity(RESPONSE_START))
}

/// Takes back a finished request's lists (their entries are dropped).
pub(crate) fn give_back(request: Vec<Header>, response: Vec<(Bytes, Bytes)>) {
    give(&REQUEST, request);
    give(&RESPONSE, response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_back_empty_with_their_memory() {
        let mut req = request();
        req.push(Header { name: Bytes::from_static(b"Host"), value: Bytes::from_static(b"x") });
        let mut resp = response();
        assert!(resp.capacity() >= RESPONSE_START);
        resp.push((Bytes::from_static(b"ETag"), Bytes::from_static(b"\"1\"")));
        let (req_ptr, resp_ptr) = (req.as_ptr(), resp.as_ptr());
        give_back(req, resp);
        let (req, resp) = (request(), response());
        assert!(req.is_empty() && resp.is_empty());
        assert_eq!(req.as_ptr(), req_ptr);
        assert_eq!(resp.as_ptr(), resp_ptr);
    }

    #[test]
    fn big_lists_are_not_kept() {
        give_back(Vec::with_capacity(MAX_KEPT + 1), Vec::with_capacity(MAX_KEPT + 1));
        // Nothing was pooled: fresh lists, the request's without memory.
        assert_eq!(request().capacity(), 0);
        assert_eq!(response().capacity(), RESPONSE_START);
    }
}
