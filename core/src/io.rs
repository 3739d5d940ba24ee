//! Sending a chain to a socket: one `writev` for a run of memory bufs,
//! `sendfile` for file regions.
//!
//! [`send_chain`] is the bottom of the write filter. It sends from the front
//! of a [`Chain`], removes what went out, and stops when the chain is empty,
//! when the per-call limit is reached, or when the socket says `EAGAIN`
//! (then [`Sent::blocked`] is set and the caller waits for writability). The
//! chain keeps whatever was not sent, so calling again later continues
//! exactly where the last call stopped.
//!
//! * Consecutive memory bufs go out in one `writev` of at most [`IOV_MAX`]
//!   slices. Empty bufs (flag-only ones included) are skipped and cost no
//!   system call.
//! * A file region at the front goes by `sendfile(2)` when
//!   [`SendOpts::sendfile`] is set. When it is not, or when the kernel
//!   refuses `sendfile` for this pair of descriptors (`EINVAL`, `ENOSYS`),
//!   the region is read with `pread` into a bounded stack buffer and goes
//!   out in the same `writev` as the memory bufs around it.
//! * A small file region (at most [`GATHER_SMALL`]) is read that way even
//!   with `sendfile` on: a 1 KiB file and its response head then leave in
//!   one system call and one TCP segment, where `sendfile` would need a
//!   second of each (and the peer a second segment to receive and
//!   acknowledge).
//! * A file that got shorter than its region (truncated while being served)
//!   is an error, never a hang: `sendfile` or `pread` reporting end of file
//!   before the region's end yields `ErrorKind::UnexpectedEof`.
//!
//! Writes to a peer that has gone raise `SIGPIPE` on Linux; like nginx, the
//! process must ignore that signal (a Rust binary does so before `main`),
//! and the write then fails with `EPIPE`, returned as an error.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{setsockopt, sockopt};
use smallvec::SmallVec;

use crate::buf::{Chain, FileRegion, Payload};

/// Most slices one `writev` takes (Linux's `IOV_MAX`).
pub const IOV_MAX: usize = 1024;

/// Size of the stack buffer file regions are copied through when they are
/// not sent with `sendfile`: bounded, so a large file never means a large
/// buffer.
const COPY_CHUNK: usize = 32 * 1024;

/// File regions up to this size are copied into the `writev` of the bufs
/// around them even with `sendfile` on (see the module's notes).
pub const GATHER_SMALL: u64 = 16 * 1024;

/// Linux moves at most this many bytes per `sendfile` (0x7ffff000); asking
/// for more is allowed but a smaller count keeps the arithmetic obvious.
const SENDFILE_MAX_COUNT: u64 = 0x7fff_f000;

/// Slices kept inline before the iovec array spills to the heap: a typical
/// response chain (status line, headers, chunk size, payload, CRLF) fits.
const IOV_INLINE: usize = 64;

/// How [`send_chain`] may send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOpts {
    /// Send file regions with `sendfile(2)` (the `sendfile` directive).
    pub sendfile: bool,
    /// At most this many bytes per call, 0 for no limit. The write filter
    /// uses it for fairness between connections (`sendfile_max_chunk`, the
    /// rate limit of `limit_rate`).
    pub limit: u64,
}

/// What one [`send_chain`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Payload bytes sent (and removed from the chain) by this call.
    pub bytes: u64,
    /// The socket said `EAGAIN`: wait until it is writable, then call again.
    pub blocked: bool,
}

/// What one system call did.
enum Step {
    /// This many bytes left; never 0.
    Wrote(u64),
    /// `EAGAIN`: nothing left.
    Blocked,
}

/// Sends from the front of `chain` to `fd`, removing what was sent.
///
/// Loops until the chain is empty, `opts.limit` bytes have gone, or the
/// socket would block. `EINTR` is retried. On an error (`EPIPE`,
/// `ECONNRESET`, a truncated file) the bytes already sent are gone from the
/// chain, the rest is kept, and the error is returned: the caller closes the
/// connection. Empty bufs at the front are dropped, so a chain whose payload
/// all went out is left empty even when it ended with flag-only bufs.
pub fn send_chain<F: AsFd>(fd: &F, chain: &mut Chain, opts: &SendOpts) -> io::Result<Sent> {
    let fd = fd.as_fd();
    let mut sent = Sent::default();
    // Once the kernel refuses sendfile for this descriptor pair it will keep
    // refusing; do not ask again within this call.
    let mut sendfile = opts.sendfile;
    loop {
        drop_empty_front(chain);
        let budget = match opts.limit {
            0 => u64::MAX,
            limit => limit - sent.bytes,
        };
        let Some(first) = chain.bufs().first() else {
            return Ok(sent);
        };
        if budget == 0 {
            return Ok(sent);
        }
        let step = match &first.payload {
            Payload::File(region) if sendfile && region.len > GATHER_SMALL => {
                match sendfile_once(fd, region, region.len.min(budget).min(SENDFILE_MAX_COUNT)) {
                    Err(e) if is_sendfile_unsupported(&e) => {
                        sendfile = false;
                        continue;
                    }
                    other => other?,
                }
            }
            _ => write_gathered(fd, chain, budget, sendfile)?,
        };
        match step {
            Step::Wrote(n) => {
                chain.consume(n);
                sent.bytes += n;
            }
            Step::Blocked => {
                sent.blocked = true;
                return Ok(sent);
            }
        }
    }
}

/// Removes empty bufs (flag-only ones, empty regions) from the front: their
/// flags have done their job once the bytes before them are sent.
fn drop_empty_front(chain: &mut Chain) {
    while chain.bufs().first().is_some_and(|b| b.is_empty()) {
        chain.pop_front();
    }
}

/// One piece of a gathered `writev`.
enum Piece {
    /// The first `take` bytes of the chain's memory buf at `index`.
    Mem { index: usize, take: usize },
    /// Bytes of a file region read into the stage at `start..end`.
    Staged { start: usize, end: usize },
}

/// One `writev` of the bufs at the front of `chain`: memory bufs as they
/// are, file regions read with `pread` into a bounded stack buffer (every
/// region when `sendfile` is off, only regions of at most [`GATHER_SMALL`]
/// when it is on), up to the first region that is not taken whole,
/// [`IOV_MAX`] slices, or `budget` bytes.
fn write_gathered(fd: BorrowedFd<'_>, chain: &Chain, budget: u64, sendfile: bool) -> io::Result<Step> {
    // Not zero-filled: most calls stage nothing, and the bytes a slice is
    // made of are exactly those pread(2) wrote.
    let mut stage = std::mem::MaybeUninit::<[u8; COPY_CHUNK]>::uninit();
    let stage = stage.as_mut_ptr().cast::<u8>();
    let mut staged = 0usize;
    let mut pieces: SmallVec<[Piece; IOV_INLINE]> = SmallVec::new();
    let mut total = 0u64;
    for (index, buf) in chain.bufs().iter().enumerate() {
        if pieces.len() == IOV_MAX || total == budget {
            break;
        }
        match &buf.payload {
            Payload::Mem(m) if m.is_empty() => continue,
            Payload::Mem(m) => {
                let take = (m.len() as u64).min(budget - total) as usize;
                pieces.push(Piece::Mem { index, take });
                total += take as u64;
            }
            Payload::File(r) if r.len == 0 => continue,
            Payload::File(r) => {
                if sendfile && r.len > GATHER_SMALL {
                    break;
                }
                let want = r.len.min(budget - total).min((COPY_CHUNK - staged) as u64) as usize;
                if want == 0 {
                    break;
                }
                // SAFETY: `staged + want <= COPY_CHUNK`, inside the stage.
                let got = pread_full(r, unsafe { stage.add(staged) }, want)?;
                if got == 0 {
                    // End of file before the region's end: an error when
                    // nothing precedes it, else the next call reports it.
                    if pieces.is_empty() {
                        return Err(truncated("pread", r.offset));
                    }
                    break;
                }
                pieces.push(Piece::Staged { start: staged, end: staged + got });
                staged += got;
                total += got as u64;
                if (got as u64) < r.len {
                    // Only whole regions are followed by later bufs.
                    break;
                }
            }
        }
    }
    debug_assert!(total > 0, "send_chain calls write_gathered with payload at the front");
    let bufs = chain.bufs();
    // Filled in place (a collected SmallVec would be moved, 1 KiB, per call).
    let mut iov: SmallVec<[IoSlice<'_>; IOV_INLINE]> = SmallVec::new();
    for p in &pieces {
        iov.push(match *p {
            Piece::Mem { index, take } => match &bufs[index].payload {
                Payload::Mem(m) => IoSlice::new(&m[..take]),
                Payload::File(_) => unreachable!("a Mem piece indexes a memory buf"),
            },
            // SAFETY: `start..end` lies inside the stage and pread(2) wrote
            // those bytes above; the stage outlives `iov`.
            Piece::Staged { start, end } => {
                IoSlice::new(unsafe { std::slice::from_raw_parts(stage.add(start), end - start) })
            }
        });
    }
    let done = uninterrupted(|| direct::writev(fd, &iov))?;
    to_step(done, write_zero)
}

/// `recv` and `writev` made as plain system calls. glibc's wrappers for
/// them are thread-cancellation points: in a process with more than one
/// thread (sluice's master thread runs beside its workers) each call also
/// turns the thread's asynchronous cancellation on and off again, which
/// `perf` put at about 1 % of a busy worker's time (4 % of its user-space
/// time) under `return 200`. sluice never cancels a thread, so the plain
/// call does the same work without that.
mod direct {
    use std::io::IoSlice;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::errno::Errno;
    use nix::libc;

    /// writev(2) of `iov` to `fd`.
    pub(super) fn writev(fd: BorrowedFd<'_>, iov: &[IoSlice<'_>]) -> nix::Result<usize> {
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix;
        // the slices it points to are borrowed for the whole call, and the
        // kernel only reads them.
        let n = unsafe { libc::syscall(libc::SYS_writev, fd.as_raw_fd(), iov.as_ptr(), iov.len()) };
        Errno::result(n).map(|n| n as usize)
    }

    /// pread(2) of at most `len` bytes at `offset` into `buf`.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes.
    pub(super) unsafe fn pread(fd: libc::c_int, buf: *mut u8, len: usize, offset: libc::off_t) -> isize {
        // SAFETY: the caller gives `len` writable bytes at `buf`; the kernel
        // writes at most that many.
        #[cfg(target_pointer_width = "64")]
        let n = unsafe { libc::syscall(libc::SYS_pread64, fd, buf, len, offset) as isize };
        // A 64-bit offset is passed in two registers, by rules that differ
        // between 32-bit architectures: the C library's wrapper knows them.
        #[cfg(not(target_pointer_width = "64"))]
        let n = unsafe { libc::pread(fd, buf.cast(), len, offset) };
        n
    }

    /// openat(2) relative to the working directory, as open(2).
    pub(super) fn open(path: &std::ffi::CStr, flags: libc::c_int) -> isize {
        // SAFETY: `path` is a NUL-terminated string borrowed for the call;
        // the kernel only reads it.
        unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags) as isize }
    }

    /// recv(2) (as recvfrom(2) without an address, which every Linux
    /// architecture has) of at most `len` bytes into `buf`.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes.
    pub(super) unsafe fn recv(fd: libc::c_int, buf: *mut u8, len: usize) -> isize {
        // SAFETY: the caller gives `len` writable bytes at `buf`; the kernel
        // writes at most that many; no address is asked for (null, null).
        unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                fd,
                buf,
                len,
                0,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            ) as isize
        }
    }
}

/// Reads up to `len` bytes from the start of `region` to `into` with
/// `pread`, retrying on `EINTR`; fewer bytes than asked for only at the
/// end of the file. `into` must be valid for `len` bytes of writes.
fn pread_full(region: &FileRegion, into: *mut u8, len: usize) -> io::Result<usize> {
    let offset = file_offset(region.offset)?;
    loop {
        // SAFETY: the caller gives `len` writable bytes at `into`; pread(2)
        // writes at most that many.
        let n = unsafe { direct::pread(region.file.as_raw_fd(), into, len, offset) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `EINVAL` / `ENOSYS` from `sendfile`: this descriptor pair cannot use it
/// (a file system without splice support, a special file), so copy instead.
fn is_sendfile_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

/// One `sendfile(2)` of `count` bytes (`count > 0`) from the region's start.
fn sendfile_once(fd: BorrowedFd<'_>, region: &FileRegion, count: u64) -> io::Result<Step> {
    let start = file_offset(region.offset)?;
    let done = uninterrupted(|| {
        // sendfile advances its own copy of the offset; the region itself is
        // advanced by the caller through `Chain::consume`.
        let mut offset = start;
        let file = region.file.as_fd();
        nix::sys::sendfile::sendfile(fd, file, Some(&mut offset), count as usize)
    })?;
    // 0 bytes for a non-empty count: end of file before the region's end.
    to_step(done, || truncated("sendfile", region.offset))
}

/// Runs one send system call, retrying on `EINTR`; `EAGAIN` becomes `None`.
fn uninterrupted(mut call: impl FnMut() -> nix::Result<usize>) -> io::Result<Option<usize>> {
    loop {
        return match call() {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
            Ok(n) => Ok(Some(n)),
        };
    }
}

/// Turns a send call's outcome into a [`Step`]. Bytes were always offered,
/// so 0 bytes sent would make the caller loop forever: it is the error
/// `on_zero` builds instead.
fn to_step(done: Option<usize>, on_zero: impl FnOnce() -> io::Error) -> io::Result<Step> {
    match done {
        None => Ok(Step::Blocked),
        Some(0) => Err(on_zero()),
        Some(n) => Ok(Step::Wrote(n as u64)),
    }
}

/// The error for a socket that took 0 of the bytes offered.
fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "the socket accepted 0 bytes")
}

/// A region offset as the kernel's `off_t`.
fn file_offset(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))
}

/// The error for a file that ended before its region did; the caller adds
/// the file name, as nginx's "sendfile() reported that ... was truncated".
fn truncated(call: &str, offset: u64) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("{call}() reported that the file was truncated at {offset}"))
}

/// Sets or clears `TCP_NODELAY` (the `tcp_nodelay` directive): small writes
/// leave at once instead of waiting for Nagle's algorithm.
/// Reads once from the socket `fd` into the spare capacity of `buf`, growing it by at
/// most `max` bytes, without zero-filling the space first (the bytes read
/// are the only ones that become part of `buf`). EINTR is retried; EAGAIN
/// comes back as `ErrorKind::WouldBlock`; `Ok(0)` is end of file.
pub fn recv_into<F: AsFd>(fd: &F, buf: &mut bytes::BytesMut, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = max.min(spare.len());
    loop {
        // SAFETY: recv(2) writes at most `want` bytes at the start of the
        // spare capacity, which is at least `want` bytes long and owned by
        // `buf`; nothing reads that memory before `set_len` below marks
        // exactly the bytes read as initialised.
        // recv(2), not read(2): the same bytes from a socket without the
        // file-layer work read(2) adds (nginx reads sockets this way too).
        let n = unsafe { direct::recv(fd.as_fd().as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: the first `n` bytes of the spare capacity were just
        // written by recv(2), and `n <= want <= spare.len()`.
        unsafe { buf.set_len(buf.len() + n) };
        return Ok(n);
    }
}

/// Opens a file for reading (close-on-exec), as `File::open` does but
/// with the plain system call (see `direct`): the static handler opens a
/// file per request. Paths up to 512 bytes are made NUL-terminated on the
/// stack; a path with a NUL byte is refused as `File::open` refuses it.
pub fn open_for_reading(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut stack = [0u8; 513];
    let heap;
    let with_nul: &[u8] = if bytes.len() < stack.len() {
        stack[..bytes.len()].copy_from_slice(bytes);
        &stack[..=bytes.len()]
    } else {
        heap = [bytes, b"\0"].concat();
        &heap
    };
    let c_path = std::ffi::CStr::from_bytes_with_nul(with_nul)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name contained an unexpected NUL byte"))?;
    loop {
        // O_LARGEFILE as open64(3) adds it (0 where the kernel implies it).
        let fd = direct::open(c_path, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE);
        if fd >= 0 {
            // SAFETY: openat(2) just returned this descriptor; nothing else
            // owns it.
            return Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd as libc::c_int) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether a non-blocking, edge-triggered socket may have bytes to read, as
/// nginx's `ready` and `pending_eof` flags track it. A read shorter than
/// asked means the socket is drained: until the poll reports it readable
/// again, [`ReadReadiness::recv_into`] answers WouldBlock without a system
/// call (which saves the read that would only say EAGAIN). Once the poll
/// has reported the peer's side closed, short reads no longer count as
/// drained: the EOF behind them gets no event of its own.
#[derive(Debug, Clone, Copy)]
pub struct ReadReadiness {
    ready: bool,
    peer_closed: bool,
}

impl Default for ReadReadiness {
    fn default() -> Self {
        ReadReadiness::new()
    }
}

impl ReadReadiness {
    /// A fresh socket: worth reading.
    pub const fn new() -> ReadReadiness {
        ReadReadiness { ready: true, peer_closed: false }
    }

    /// A socket with nothing to read until the poll reports otherwise.
    pub const fn drained() -> ReadReadiness {
        ReadReadiness { ready: false, peer_closed: false }
    }

    /// Takes in a readiness event from the poll.
    pub fn on_event(&mut self, readable: bool, read_closed: bool) {
        self.ready |= readable;
        self.peer_closed |= read_closed;
    }

    /// Whether a read may find bytes (or the EOF).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// [`recv_into`], or WouldBlock at once when the socket is known to be
    /// drained; keeps track of what the read says.
    pub fn recv_into<F: AsFd>(&mut self, fd: &F, buf: &mut bytes::BytesMut, max: usize) -> io::Result<usize> {
        if !self.ready {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let read = recv_into(fd, buf, max);
        match &read {
            Ok(n) if *n > 0 && *n < max && !self.peer_closed => self.ready = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready = false,
            _ => {}
        }
        read
    }
}

/// Sets or clears TCP_NODELAY.
pub fn set_nodelay<F: AsFd>(fd: &F, on: bool) -> io::Result<()> {
    setsockopt(fd, sockopt::TcpNoDelay, &on).map_err(io::Error::from)
}

/// Sets or clears `TCP_CORK` (the `tcp_nopush` directive): while corked, the
/// kernel sends only full segments, so headers and the start of a file leave
/// together; clearing it pushes out what is pending.
pub fn set_cork<F: AsFd>(fd: &F, on: bool) -> io::Result<()> {
    // nix 0.29 has no TCP_CORK option, hence the direct call.
    let value = libc::c_int::from(on);
    // SAFETY: the descriptor is borrowed and open for the whole call; the
    // option value points to a live c_int and the length given is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// Helpers for benchmarks: not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use std::io::{self, Read};
    use std::os::unix::net::UnixStream;
    use std::thread::{self, JoinHandle};

    /// A connected Unix socket whose peer a thread reads and discards. The
    /// thread ends when the returned socket is closed and yields the number
    /// of bytes it received.
    pub fn discard_pair() -> io::Result<(UnixStream, JoinHandle<u64>)> {
        let (ours, mut theirs) = UnixStream::pair()?;
        let reader = thread::Builder::new().name("discard".into()).spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                match theirs.read(&mut buf) {
                    Ok(0) => return total,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return total,
                }
            }
        })?;
        Ok((ours, reader))
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
