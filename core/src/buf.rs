//! Buffers and chains: what content handlers produce and filters pass on.
//!
//! A [`Buf`] is one region of response payload — memory shared by reference
//! count ([`Bytes`], static slices included) or a region of an open file —
//! plus the flags that steer the filters below it:
//!
//! * `flush`: send what you have now (the write filter ignores
//!   `postpone_output` for it, gzip turns it into a sync flush);
//! * `last_buf`: the end of the response;
//! * `last_in_chain`: the end of a subrequest's part of the response.
//!
//! A flag-only empty buf is legal: `Buf::last()` ends a response without
//! payload.
//!
//! A [`Chain`] is an ordered run of bufs. Filters that do not transform the
//! payload never copy it: they push small bufs before and after (the chunked
//! filter's size line and CRLF) and hand the whole run down, where the write
//! filter sends it with one `writev` (or `sendfile` for file regions).

use std::fmt;
use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

/// A region of an open file, sent with `sendfile` when the connection allows.
#[derive(Clone)]
pub struct FileRegion {
    /// The open file, shared: several regions (ranges) may point into it.
    pub file: Arc<File>,
    /// Where the region starts in the file.
    pub offset: u64,
    /// How many bytes the region covers.
    pub len: u64,
}

impl fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRegion").field("offset", &self.offset).field("len", &self.len).finish()
    }
}

/// What a buf carries.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Memory: a `Bytes` (heap, shared by reference count, or static).
    Mem(Bytes),
    /// A file region.
    File(FileRegion),
}

/// One buffer of a response, with its flags.
#[derive(Clone, Debug)]
pub struct Buf {
    /// The payload; an empty `Mem` for a flag-only buf.
    pub payload: Payload,
    /// Send everything up to here now.
    pub flush: bool,
    /// This is the last buf of the response.
    pub last_buf: bool,
    /// This is the last buf of a subrequest's output.
    pub last_in_chain: bool,
}

impl Buf {
    /// A memory buf, no flags.
    pub fn mem(bytes: impl Into<Bytes>) -> Buf {
        Buf { payload: Payload::Mem(bytes.into()), flush: false, last_buf: false, last_in_chain: false }
    }

    /// A static memory buf, no flags; never allocates.
    pub const fn from_static(bytes: &'static [u8]) -> Buf {
        Buf { payload: Payload::Mem(Bytes::from_static(bytes)), flush: false, last_buf: false, last_in_chain: false }
    }

    /// A file region buf, no flags.
    pub fn file(file: Arc<File>, offset: u64, len: u64) -> Buf {
        Buf {
            payload: Payload::File(FileRegion { file, offset, len }),
            flush: false,
            last_buf: false,
            last_in_chain: false,
        }
    }

    /// An empty buf that ends the response.
    pub const fn last() -> Buf {
        let mut b = Buf::from_static(b"");
        b.last_buf = true;
        b
    }

    /// An empty buf that asks for a flush.
    pub const fn flush() -> Buf {
        let mut b = Buf::from_static(b"");
        b.flush = true;
        b
    }

    /// Builder: set `last_buf`.
    pub fn with_last(mut self) -> Buf {
        self.last_buf = true;
        self
    }

    /// Builder: set `flush`.
    pub fn with_flush(mut self) -> Buf {
        self.flush = true;
        self
    }

    /// Payload length in bytes.
    pub fn len(&self) -> u64 {
        match &self.payload {
            Payload::Mem(b) => b.len() as u64,
            Payload::File(r) => r.len,
        }
    }

    /// True when the buf carries no payload (it may still carry flags).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for a memory buf.
    pub fn in_memory(&self) -> bool {
        matches!(self.payload, Payload::Mem(_))
    }

    /// The memory payload, if this is a memory buf.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.payload {
            Payload::Mem(b) => Some(b),
            Payload::File(_) => None,
        }
    }

    /// True when the buf carries any flag.
    pub fn has_flags(&self) -> bool {
        self.flush || self.last_buf || self.last_in_chain
    }

    /// Drops `n` bytes from the front of the payload (`n <= len`).
    pub fn advance(&mut self, n: u64) {
        debug_assert!(n <= self.len());
        match &mut self.payload {
            Payload::Mem(b) => {
                let _ = b.split_to(n as usize);
            }
            Payload::File(r) => {
                r.offset += n;
                r.len -= n;
            }
        }
    }

    /// Splits the payload at `at`: `self` keeps `[at, len)` and its flags;
    /// the returned buf holds `[0, at)` with no flags. No payload is copied.
    pub fn split_to(&mut self, at: u64) -> Buf {
        debug_assert!(at <= self.len());
        let head = match &mut self.payload {
            Payload::Mem(b) => Payload::Mem(b.split_to(at as usize)),
            Payload::File(r) => {
                let head = FileRegion { file: r.file.clone(), offset: r.offset, len: at };
                r.offset += at;
                r.len -= at;
                Payload::File(head)
            }
        };
        Buf { payload: head, flush: false, last_buf: false, last_in_chain: false }
    }
}

/// An ordered run of bufs. Small chains live inline (no allocation).
#[derive(Clone, Debug, Default)]
pub struct Chain {
    bufs: SmallVec<[Buf; 2]>,
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Chain {
        Chain { bufs: SmallVec::new() }
    }

    /// A chain of one buf.
    pub fn one(buf: Buf) -> Chain {
        let mut c = Chain::new();
        c.push(buf);
        c
    }

    /// Appends a buf.
    pub fn push(&mut self, buf: Buf) {
        self.bufs.push(buf);
    }

    /// Prepends a buf.
    pub fn push_front(&mut self, buf: Buf) {
        self.bufs.insert(0, buf);
    }

    /// Appends all bufs of `other`.
    pub fn append(&mut self, other: Chain) {
        self.bufs.extend(other.bufs);
    }

    /// Removes and returns the first buf.
    pub fn pop_front(&mut self) -> Option<Buf> {
        if self.bufs.is_empty() {
            None
        } else {
            Some(self.bufs.remove(0))
        }
    }

    /// The bufs, in order.
    pub fn bufs(&self) -> &[Buf] {
        &self.bufs
    }

    /// The bufs, in order, mutably.
    pub fn bufs_mut(&mut self) -> &mut [Buf] {
        &mut self.bufs
    }

    /// Number of bufs.
    pub fn buf_count(&self) -> usize {
        self.bufs.len()
    }

    /// True when the chain has no bufs at all (not even flag-only ones).
    /// A chain of flag-only bufs is not empty but has no payload: see
    /// [`Chain::has_payload`].
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// True when some buf carries payload bytes.
    pub fn has_payload(&self) -> bool {
        self.bufs.iter().any(|b| !b.is_empty())
    }

    /// Total payload length.
    pub fn len(&self) -> u64 {
        self.bufs.iter().map(Buf::len).sum()
    }

    /// True when some buf carries `last_buf`.
    pub fn is_last(&self) -> bool {
        self.bufs.iter().any(|b| b.last_buf)
    }

    /// True when some buf carries `flush` or `last_buf`.
    pub fn wants_flush(&self) -> bool {
        self.bufs.iter().any(|b| b.flush || b.last_buf)
    }

    /// True when every buf is in memory.
    pub fn all_in_memory(&self) -> bool {
        self.bufs.iter().all(Buf::in_memory)
    }

    /// Splits at byte offset `at`: `self` keeps `[at, len)`, the returned
    /// chain holds `[0, at)`. A buf straddling `at` is split without copying;
    /// flags stay with the part of the buf that keeps its end.
    pub fn split_to(&mut self, at: u64) -> Chain {
        // Whole bufs that go to the head, moved in one step (removing them
        // from the front one by one would cost quadratic time on long chains).
        let mut left = at;
        let mut whole = 0;
        for b in &self.bufs {
            let n = b.len();
            if left == 0 || !(n < left || (n == left && !b.has_flags())) {
                break;
            }
            left -= n;
            whole += 1;
        }
        let mut head: Chain = self.bufs.drain(..whole).collect();
        if left > 0 {
            if let Some(first) = self.bufs.first_mut() {
                // The buf straddles the split, or ends exactly at it but
                // carries flags: its flags belong to the tail.
                head.bufs.push(first.split_to(left));
            }
        }
        head
    }

    /// Drops `n` payload bytes from the front, removing the bufs they
    /// empty (in one step: long chains cost linear time). A flag-only buf
    /// right after the consumed bytes stays, so its flags still apply.
    pub fn consume(&mut self, mut n: u64) {
        let mut whole = 0;
        for b in &self.bufs {
            let len = b.len();
            if len > n {
                break;
            }
            n -= len;
            whole += 1;
            if n == 0 {
                break;
            }
        }
        self.bufs.drain(..whole);
        if n > 0 {
            if let Some(first) = self.bufs.first_mut() {
                first.advance(n);
            }
        }
    }

    /// Iterates over the bufs.
    pub fn iter(&self) -> std::slice::Iter<'_, Buf> {
        self.bufs.iter()
    }

    /// Copies the memory payload into one `Vec` (tests and small bodies
    /// only; file regions are read from their files).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for b in &self.bufs {
            match &b.payload {
                Payload::Mem(m) => out.extend_from_slice(m),
                Payload::File(r) => {
                    use std::os::unix::fs::FileExt;
                    let start = out.len();
                    out.resize(start + r.len as usize, 0);
                    r.file.read_exact_at(&mut out[start..], r.offset)?;
                }
            }
        }
        Ok(out)
    }
}

impl IntoIterator for Chain {
    type Item = Buf;
    type IntoIter = smallvec::IntoIter<[Buf; 2]>;
    fn into_iter(self) -> Self::IntoIter {
        self.bufs.into_iter()
    }
}

impl<'a> IntoIterator for &'a Chain {
    type Item = &'a Buf;
    type IntoIter = std::slice::Iter<'a, Buf>;
    fn into_iter(self) -> Self::IntoIter {
        self.bufs.iter()
    }
}

impl FromIterator<Buf> for Chain {
    fn from_iter<I: IntoIterator<Item = Buf>>(iter: I) -> Chain {
        Chain { bufs: iter.into_iter().collect() }
    }
}

impl From<Buf> for Chain {
    fn from(b: Buf) -> Chain {
        Chain::one(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(parts: &[&'static [u8]]) -> Chain {
        parts.iter().map(|p| Buf::from_static(p)).collect()
    }

    #[test]
    fn length_and_last() {
        let mut c = chain(&[b"abc", b"", b"de"]);
        assert_eq!(c.len(), 5);
        assert!(c.has_payload());
        let flags_only = Chain::one(Buf::flush());
        assert!(!flags_only.is_empty() && !flags_only.has_payload());
        assert!(!c.is_last());
        c.push(Buf::last());
        assert!(c.is_last());
        assert!(c.wants_flush());
        assert_eq!(c.buf_count(), 4);
    }

    #[test]
    fn split_every_offset_keeps_bytes_and_shares_memory() {
        let data = Bytes::from_static(b"hello, world");
        for at in 0..=12u64 {
            let mut c = Chain::new();
            c.push(Buf::mem(data.slice(0..5)));
            c.push(Buf::mem(data.slice(5..12)).with_last());
            let head = c.split_to(at);
            assert_eq!(head.len(), at);
            assert_eq!(c.len(), 12 - at);
            let mut joined = head.to_vec().unwrap();
            joined.extend(c.to_vec().unwrap());
            assert_eq!(joined, b"hello, world");
            assert!(c.is_last(), "the last flag stays with the tail at {at}");
            assert!(!head.is_last());
            // No copies: every memory buf points into the original allocation.
            for b in head.iter().chain(c.iter()) {
                let m = b.as_bytes().unwrap();
                if !m.is_empty() {
                    let base = data.as_ptr() as usize;
                    let p = m.as_ptr() as usize;
                    assert!(p >= base && p + m.len() <= base + data.len());
                }
            }
        }
    }

    #[test]
    fn consume_removes_sent_bytes() {
        for n in 0..=6u64 {
            let mut c = chain(&[b"ab", b"", b"cd", b"ef"]);
            c.consume(n);
            assert_eq!(c.len(), 6 - n);
            assert_eq!(c.to_vec().unwrap(), &b"abcdef"[n as usize..]);
        }
    }

    #[test]
    fn file_regions_split_without_reading() {
        let path = std::env::temp_dir().join(format!("sluice-buf-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let f = Arc::new(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut c = Chain::one(Buf::file(f, 2, 6));
        let head = c.split_to(4);
        assert_eq!(head.to_vec().unwrap(), b"2345");
        assert_eq!(c.to_vec().unwrap(), b"67");
    }
}
