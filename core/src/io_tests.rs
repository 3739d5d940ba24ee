//! Tests of `io`: real sockets and pipes, a reader thread on the far end.

use super::*;
use crate::buf::Buf;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Deterministic bytes that differ with `seed`, so a misplaced byte shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// An open, already unlinked file holding `data`.
fn temp_file(data: &[u8]) -> Arc<File> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("sluice-io-{}-{n}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let f = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    Arc::new(f)
}

/// Reads everything from `r` until end of file, on a thread.
fn reader<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    })
}

/// A connected TCP pair on loopback: (client, accepted server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// A pipe as (read end, write end) files.
fn pipe() -> (File, File) {
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    (File::from(r), File::from(w))
}

/// A chain of memory and file parts, and the bytes it stands for.
fn mixed_chain() -> (Chain, Vec<u8>) {
    let file_data = pattern(300_000, 7);
    let file = temp_file(&file_data);
    let mut chain = Chain::new();
    let mut want = Vec::new();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n";
    chain.push(Buf::from_static(head));
    want.extend_from_slice(head);
    chain.push(Buf::file(file.clone(), 10, 150_000));
    want.extend_from_slice(&file_data[10..150_010]);
    chain.push(Buf::flush());
    chain.push(Buf::from_static(b"\r\n"));
    want.extend_from_slice(b"\r\n");
    chain.push(Buf::file(file.clone(), 0, 0));
    chain.push(Buf::file(file, 200_000, 100_000));
    want.extend_from_slice(&file_data[200_000..]);
    let tail = pattern(70_000, 3);
    chain.push(Buf::mem(tail.clone()));
    want.extend_from_slice(&tail);
    chain.push(Buf::last());
    (chain, want)
}

/// Sends the whole chain on a blocking descriptor: one call must do it.
fn send_blocking<F: AsFd>(fd: &F, chain: &mut Chain, opts: &SendOpts) -> u64 {
    let total = chain.len();
    let sent = send_chain(fd, chain, opts).unwrap();
    assert_eq!(sent, Sent { bytes: total, blocked: false });
    assert!(chain.is_empty(), "flag-only bufs are dropped too: {chain:?}");
    sent.bytes
}

/// Sends until the chain is empty on a non-blocking descriptor, waiting for
/// for the reader whenever the socket is full.
fn send_until_done<F: AsFd>(fd: &F, chain: &mut Chain, opts: &SendOpts) -> u64 {
    let mut total = 0;
    while !chain.is_empty() {
        let sent = send_chain(fd, chain, opts).unwrap();
        total += sent.bytes;
        if sent.blocked {
            // The reader thread drains the socket; give it a moment.
            thread::sleep(Duration::from_millis(1));
        }
    }
    total
}

#[test]
fn many_small_bufs_over_a_socketpair() {
    let (w, r) = UnixStream::pair().unwrap();
    let got = reader(r);
    let mut chain = Chain::new();
    let mut want = Vec::new();
    for i in 0..3000usize {
        let part = pattern(1 + i % 7, i as u8);
        want.extend_from_slice(&part);
        chain.push(Buf::mem(part));
        if i % 100 == 0 {
            chain.push(Buf::flush());
        }
    }
    assert!(chain.buf_count() > 2 * IOV_MAX);
    let opts = SendOpts::default();
    assert_eq!(send_blocking(&w, &mut chain, &opts), want.len() as u64);
    drop(w);
    assert_eq!(got.join().unwrap(), want);
}

#[test]
fn mixed_memory_and_file_regions_over_tcp() {
    for sendfile in [true, false] {
        let (w, r) = tcp_pair();
        let got = reader(r);
        let (mut chain, want) = mixed_chain();
        let opts = SendOpts { sendfile, limit: 0 };
        assert_eq!(send_blocking(&w, &mut chain, &opts), want.len() as u64);
        drop(w);
        assert_eq!(got.join().unwrap(), want, "sendfile {sendfile}");
    }
}

#[test]
fn file_regions_into_a_pipe() {
    for sendfile in [true, false] {
        let (r, w) = pipe();
        let got = reader(r);
        let (mut chain, want) = mixed_chain();
        let opts = SendOpts { sendfile, limit: 0 };
        assert_eq!(send_blocking(&w, &mut chain, &opts), want.len() as u64);
        drop(w);
        assert_eq!(got.join().unwrap(), want, "sendfile {sendfile}");
    }
}

#[test]
fn sendfile_refused_falls_back_to_copying() {
    // Linux refuses sendfile (EINVAL) into a socket flagged O_APPEND, while
    // write() works: the region must still arrive, read with pread.
    let (w, r) = UnixStream::pair().unwrap();
    let flags = OFlag::from_bits_truncate(fcntl(w.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
    fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_APPEND)).unwrap();
    let file = temp_file(&[0u8; 10]);
    let refused = nix::sys::sendfile::sendfile(&w, file.as_fd(), Some(&mut 0), 10);
    assert_eq!(refused, Err(Errno::EINVAL), "the premise of this test");

    let got = reader(r);
    let (mut chain, want) = mixed_chain();
    let opts = SendOpts { sendfile: true, limit: 0 };
    assert_eq!(send_blocking(&w, &mut chain, &opts), want.len() as u64);
    drop(w);
    assert_eq!(got.join().unwrap(), want);
}

/// A non-blocking TCP pair whose buffers are small and nobody reads.
fn stalled_tcp_pair() -> (TcpStream, TcpStream) {
    let (w, r) = tcp_pair();
    // A receive buffer below the loopback MSS (64 KiB) would make TCP crawl
    // on persist-timer probes; fixed sizes also stop autotuning from
    // swallowing the whole chain.
    setsockopt(&w, sockopt::SndBuf, &16_384).unwrap();
    setsockopt(&r, sockopt::RcvBuf, &131_072).unwrap();
    w.set_nonblocking(true).unwrap();
    (w, r)
}

/// Memory bufs and a file region, in either order, and their bytes.
fn big_chain(file_first: bool) -> (Chain, Vec<u8>) {
    let mut mem = Chain::new();
    let mut mem_bytes = Vec::new();
    for i in 0..600 {
        let part = pattern(1000, i as u8);
        mem_bytes.extend_from_slice(&part);
        mem.push(Buf::mem(part));
    }
    let file_data = pattern(600_000, 9);
    let file = Chain::one(Buf::file(temp_file(&file_data), 0, 600_000));
    let (mut chain, want) = if file_first {
        let mut c = file;
        c.append(mem);
        (c, [file_data, mem_bytes].concat())
    } else {
        let mut c = mem;
        c.append(file);
        (c, [mem_bytes, file_data].concat())
    };
    chain.push(Buf::last());
    (chain, want)
}

#[test]
fn full_socket_blocks_keeps_the_rest_then_finishes() {
    for (sendfile, file_first) in [(true, true), (false, true), (true, false), (false, false)] {
        let (w, mut r) = stalled_tcp_pair();
        let (mut chain, want) = big_chain(file_first);
        let total = want.len() as u64;
        let opts = SendOpts { sendfile, limit: 0 };

        let first = send_chain(&w, &mut chain, &opts).unwrap();
        assert!(first.blocked);
        assert!(first.bytes > 0 && first.bytes < total, "{first:?}");
        assert_eq!(chain.len(), total - first.bytes);
        assert_eq!(chain.to_vec().unwrap(), &want[first.bytes as usize..]);
        assert!(chain.is_last(), "the last flag is kept with the rest");

        // Still nobody reading: the next call blocks again (a late ACK may
        // have freed a little room) and keeps the rest.
        let again = send_chain(&w, &mut chain, &opts).unwrap();
        assert!(again.blocked);
        let queued = (first.bytes + again.bytes) as usize;
        assert_eq!(chain.to_vec().unwrap(), &want[queued..]);

        // Read what is queued, then let a reader drain the rest; a larger
        // send buffer now keeps the test quick.
        let mut head = vec![0u8; queued];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head, &want[..queued]);
        setsockopt(&w, sockopt::SndBuf, &(1 << 20)).unwrap();
        let got = reader(r);
        let rest = send_until_done(&w, &mut chain, &opts);
        assert_eq!(queued as u64 + rest, total);
        drop(w);
        assert_eq!(got.join().unwrap(), &want[queued..]);
    }
}

#[test]
fn limit_caps_every_call() {
    for sendfile in [true, false] {
        let (w, r) = UnixStream::pair().unwrap();
        let got = reader(r);
        let (mut chain, want) = mixed_chain();
        let limit = 50_000;
        let opts = SendOpts { sendfile, limit };
        let mut left = want.len() as u64;
        let mut calls = 0;
        while !chain.is_empty() {
            let sent = send_chain(&w, &mut chain, &opts).unwrap();
            assert_eq!(sent, Sent { bytes: left.min(limit), blocked: false });
            left -= sent.bytes;
            assert_eq!(chain.len(), left);
            calls += 1;
        }
        assert_eq!(calls, want.len().div_ceil(limit as usize));
        drop(w);
        assert_eq!(got.join().unwrap(), want, "sendfile {sendfile}");
    }
}

#[test]
fn small_limit_splits_a_memory_buf() {
    let (w, mut r) = UnixStream::pair().unwrap();
    let mut chain: Chain = [Buf::from_static(b"hello"), Buf::from_static(b"world")].into_iter().collect();
    let opts = SendOpts { sendfile: false, limit: 7 };
    let sent = send_chain(&w, &mut chain, &opts).unwrap();
    assert_eq!(sent, Sent { bytes: 7, blocked: false });
    assert_eq!(chain.to_vec().unwrap(), b"rld");
    let mut got = [0u8; 7];
    r.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hellowo");
}

#[test]
fn flag_only_bufs_cost_no_system_call() {
    // The pipe's reader is gone: any write would fail with EPIPE.
    let (r, w) = pipe();
    drop(r);
    let mut chain: Chain =
        [Buf::flush(), Buf::mem(Bytes::new()), Buf::file(temp_file(b"abc"), 1, 0), Buf::last()].into_iter().collect();
    for sendfile in [true, false] {
        let mut c = chain.clone();
        let sent = send_chain(&w, &mut c, &SendOpts { sendfile, limit: 0 }).unwrap();
        assert_eq!(sent, Sent { bytes: 0, blocked: false });
        assert!(c.is_empty());
    }
    // The same descriptor with one byte of payload does fail.
    chain.push(Buf::from_static(b"x"));
    let err = send_chain(&w, &mut chain, &SendOpts::default()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    assert_eq!(chain.to_vec().unwrap(), b"x", "the unsent byte is kept");
}

#[test]
fn peer_gone_is_an_error() {
    for sendfile in [true, false] {
        let (w, r) = UnixStream::pair().unwrap();
        drop(r);
        let mut chain = Chain::one(Buf::file(temp_file(b"payload"), 0, 7));
        let err = send_chain(&w, &mut chain, &SendOpts { sendfile, limit: 0 }).unwrap_err();
        assert!(matches!(err.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)), "{err}");
        assert_eq!(chain.len(), 7);
    }
}

/// A head, a small file region and a tail leave in one `writev`, sendfile
/// on or off: a SOCK_SEQPACKET peer receives them as one message. A region
/// above `GATHER_SMALL` with sendfile on goes separately.
#[test]
fn small_file_region_goes_in_the_same_writev_as_the_head() {
    use nix::sys::socket::{recv, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
    for (sendfile, len, messages) in [(true, 1024, 1), (false, 1024, 1), (true, GATHER_SMALL as usize + 1, 3)] {
        let (w, r) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::empty()).unwrap();
        setsockopt(&w, sockopt::SndBuf, &(1 << 20)).unwrap();
        setsockopt(&r, sockopt::RcvBuf, &(1 << 20)).unwrap();
        let data = pattern(len, 9);
        let mut chain = Chain::new();
        chain.push(Buf::from_static(b"HTTP/1.1 200 OK\r\n\r\n"));
        chain.push(Buf::file(temp_file(&data), 0, len as u64));
        chain.push(Buf::from_static(b"\r\n"));
        let want = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &data, b"\r\n"].concat();
        let sent = send_chain(&w, &mut chain, &SendOpts { sendfile, limit: 0 }).unwrap();
        assert_eq!(sent.bytes, want.len() as u64);
        drop(w);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut count = 0;
        loop {
            let n = recv(r.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            count += 1;
        }
        assert_eq!(got, want, "sendfile {sendfile}, {len} bytes");
        assert_eq!(count, messages, "sendfile {sendfile}, {len} bytes");
    }
}

#[test]
fn truncated_file_is_an_error_not_a_hang() {
    for sendfile in [true, false] {
        let (w, r) = UnixStream::pair().unwrap();
        let got = reader(r);
        let data = pattern(100, 1);
        // The region claims 100 bytes from offset 50 of a 100-byte file.
        let mut chain = Chain::one(Buf::file(temp_file(&data), 50, 100));
        let err = send_chain(&w, &mut chain, &SendOpts { sendfile, limit: 0 }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("truncated at 100"), "{err}");
        assert_eq!(chain.len(), 50, "what exists went out, the rest is kept");
        drop(w);
        assert_eq!(got.join().unwrap(), &data[50..]);
    }
}

/// Reads an integer TCP option back (TCP_CORK has no nix getter).
fn tcp_option(s: &TcpStream, name: libc::c_int) -> libc::c_int {
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the socket is open for the call; value and len are live locals
    // and len holds value's size.
    let rc = unsafe {
        libc::getsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, name, std::ptr::from_mut(&mut value).cast(), &mut len)
    };
    assert_eq!(rc, 0);
    value
}

#[test]
fn cork_and_nodelay_set_and_clear() {
    let (mut w, mut r) = tcp_pair();
    set_cork(&w, true).unwrap();
    assert_eq!(tcp_option(&w, libc::TCP_CORK), 1);
    w.write_all(b"corked").unwrap();
    // Clearing the cork pushes out the pending partial segment.
    set_cork(&w, false).unwrap();
    assert_eq!(tcp_option(&w, libc::TCP_CORK), 0);
    r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 6];
    r.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"corked");

    set_nodelay(&w, true).unwrap();
    assert!(w.nodelay().unwrap());
    set_nodelay(&w, false).unwrap();
    assert!(!w.nodelay().unwrap());

    let (u, _peer) = UnixStream::pair().unwrap();
    assert!(set_cork(&u, true).is_err(), "not a TCP socket");
}

#[test]
fn discard_pair_counts_what_it_swallows() {
    let (w, counter) = bench_support::discard_pair().unwrap();
    let (mut chain, want) = mixed_chain();
    send_blocking(&w, &mut chain, &SendOpts { sendfile: true, limit: 0 });
    drop(w);
    assert_eq!(counter.join().unwrap(), want.len() as u64);
}

#[test]
fn recv_into_appends_without_zero_filling_and_reports_eof() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut buf = bytes::BytesMut::from(&b"head:"[..]);
    assert_eq!(recv_into(&a, &mut buf, 64).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    b.write_all(b"hello").unwrap();
    assert_eq!(recv_into(&a, &mut buf, 64).unwrap(), 5);
    assert_eq!(&buf[..], b"head:hello");
    b.write_all(b"0123456789").unwrap();
    assert_eq!(recv_into(&a, &mut buf, 4).unwrap(), 4, "at most `max` bytes");
    assert_eq!(&buf[..], b"head:hello0123");
    drop(b);
    assert_eq!(recv_into(&a, &mut buf, 64).unwrap(), 6);
    assert_eq!(recv_into(&a, &mut buf, 64).unwrap(), 0, "end of file");
}

#[test]
fn a_short_read_marks_the_socket_drained_until_the_poll_says_otherwise() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut read = ReadReadiness::new();
    let mut buf = bytes::BytesMut::new();
    theirs.write_all(b"hello").unwrap();
    assert_eq!(read.recv_into(&ours, &mut buf, 10).unwrap(), 5);
    // Bytes that came since are left for the event that announces them.
    theirs.write_all(b"abc").unwrap();
    assert_eq!(read.recv_into(&ours, &mut buf, 10).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    read.on_event(true, false);
    assert_eq!(read.recv_into(&ours, &mut buf, 10).unwrap(), 3);
    assert_eq!(&buf[..], b"helloabc");
    // Once the peer's close was reported, a short read is not the end.
    theirs.write_all(b"z").unwrap();
    theirs.shutdown(std::net::Shutdown::Write).unwrap();
    read.on_event(true, true);
    assert_eq!(read.recv_into(&ours, &mut buf, 10).unwrap(), 1);
    assert_eq!(read.recv_into(&ours, &mut buf, 10).unwrap(), 0);
}

#[test]
fn open_for_reading_opens_as_file_open_does() {
    let dir = std::env::temp_dir().join(format!("sluice-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("f");
    std::fs::write(&short, b"contents").unwrap();
    let mut got = String::new();
    open_for_reading(&short).unwrap().read_to_string(&mut got).unwrap();
    assert_eq!(got, "contents");
    // Close-on-exec, as std opens files.
    let f = open_for_reading(&short).unwrap();
    let flags = fcntl(f.as_raw_fd(), FcntlArg::F_GETFD).unwrap();
    assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
    // A path past the stack buffer takes the heap copy.
    let mut long = dir.clone();
    while long.as_os_str().len() < 600 {
        long.push("dddddddddddddddddddddddddddddddddddddddd");
    }
    std::fs::create_dir_all(&long).unwrap();
    let long_file = long.join("g");
    std::fs::write(&long_file, b"deep").unwrap();
    got.clear();
    open_for_reading(&long_file).unwrap().read_to_string(&mut got).unwrap();
    assert_eq!(got, "deep");
    // Errors keep their kind: missing, a NUL inside, writing refused.
    assert_eq!(open_for_reading(&dir.join("missing")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    let with_nul = std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/tmp/a\0b"));
    assert_eq!(open_for_reading(with_nul).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert!(open_for_reading(&short).unwrap().write_all(b"x").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
