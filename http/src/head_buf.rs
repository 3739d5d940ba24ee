//! A per-worker arena for small per-request byte strings (the response
//! head, short header values; a request head is split off its read buffer
//! instead, see `parse::HeadParser::parse_from`).
//!
//! Each request used to allocate two of them with `malloc`, and turning a
//! fresh `BytesMut` into shared `Bytes` cost another allocation each. Here
//! they are carved from a shared chunk instead: [`build`] writes at the
//! end of this thread's chunk and splits the written part off, so the
//! usual request allocates nothing; once every piece of a chunk has been
//! dropped, `BytesMut::reserve` reuses the chunk from its start, else it
//! allocates a new one. Chunks are small, so a piece kept long (the head
//! of a slow upload) pins little memory.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Bytes allocated per chunk: room for several typical heads.
const CHUNK: usize = 4096;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `write` on an empty buffer with room for at least `min` bytes and
/// returns what it wrote. `write` may write more than `min` (the buffer
/// grows) and must not call `build` itself.
pub(crate) fn build(min: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena.capacity() < min {
            arena.reserve(CHUNK.max(min));
        }
        write(&mut arena);
        arena.split().freeze()
    })
}

/// A copy of `bytes` from the arena: for a short string made per response
/// (a header value), cheaper than an allocation of its own.
pub fn copy(bytes: &[u8]) -> Bytes {
    build(bytes.len(), |b| b.extend_from_slice(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hold_what_was_written() {
        let a = copy(b"GET / HTTP/1.1\r\n\r\n");
        let b = build(8, |b| b.extend_from_slice(b"HTTP/1.1 200 OK\r\n"));
        let big = copy(&[b'x'; 3 * CHUNK]);
        assert_eq!(&a[..], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(&b[..], b"HTTP/1.1 200 OK\r\n");
        assert_eq!(big.len(), 3 * CHUNK);
        assert!(big.iter().all(|&c| c == b'x'));
        let empty = build(0, |_| {});
        assert!(empty.is_empty());
    }

    #[test]
    fn small_pieces_share_a_chunk() {
        let a = copy(b"first");
        let b = copy(b"second");
        // Carved one after the other from the same allocation.
        assert_eq!(b.as_ptr(), a.as_ptr().wrapping_add(a.len()));
    }

    #[test]
    fn a_chunk_is_reused_once_its_pieces_are_gone() {
        let first = copy(&[b'a'; 100]);
        let start = first.as_ptr();
        drop(first);
        // Use up the rest of the chunk, drop everything: the next piece
        // starts at the beginning of the same chunk again.
        let rest = build(1, |b| b.extend_from_slice(&vec![b'b'; b.capacity()]));
        drop(rest);
        let again = copy(b"again");
        assert_eq!(again.as_ptr(), start);
    }
}
