//! A per-worker pool of read buffers, for client connections and for
//! modules' own sockets (the proxy's upstream reads).
//!
//! An idle keep-alive connection holds no read buffer (memory per idle
//! connection stays small), so every request would otherwise allocate one
//! and free it again. Buffers go back to a small pool of the worker thread
//! instead, as sozu's buffer pool does; the pool is bounded, so it never
//! holds more than `POOLED` buffers of up to `MAX_POOLED_CAPACITY` bytes.
//! A buffer given back while `Bytes` split from it are still alive is
//! safe: it is only reused in place once they are gone (`BytesMut::reserve`
//! allocates anew before that).

use bytes::BytesMut;

use sluice_core::reuse::Spares;

/// Buffers kept per worker.
const POOLED: usize = 64;
/// Larger buffers (a big pipelined burst or body) are freed, not kept.
const MAX_POOLED_CAPACITY: usize = 64 * 1024;

thread_local! {
    static POOL: Spares<BytesMut> = const { Spares::new(POOLED) };
}

/// An empty buffer with room for at least `min` bytes.
pub fn take(min: usize) -> BytesMut {
    let pooled = POOL.with(Spares::take);
    match pooled {
        Some(mut b) => {
            b.reserve(min);
            b
        }
        None => BytesMut::with_capacity(min),
    }
}

/// Returns a buffer's memory to the pool (its contents are dropped).
pub fn give(mut b: BytesMut) {
    let cap = b.capacity();
    if cap == 0 || cap > MAX_POOLED_CAPACITY {
        return;
    }
    b.clear();
    POOL.with(|p| p.keep(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_bounded() {
        let b = take(4096);
        let ptr = b.as_ptr();
        give(b);
        let again = take(4096);
        assert_eq!(again.as_ptr(), ptr, "the pooled allocation comes back");
        assert!(again.is_empty());
        give(BytesMut::with_capacity(MAX_POOLED_CAPACITY * 2));
        for _ in 0..POOLED * 2 {
            give(BytesMut::with_capacity(16));
        }
        POOL.with(|p| assert!(p.len() <= POOLED));
    }
}
