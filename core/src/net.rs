//! Listening sockets.
//!
//! Each worker thread binds its own listener on every `listen` address
//! (`SO_REUSEPORT`), so the kernel spreads new connections over the workers
//! and nothing is shared on the accept path. [`bind_listener`] builds one
//! such socket the way nginx does: `SO_REUSEADDR` always (a restart does not
//! wait for old connections in TIME_WAIT), `SO_REUSEPORT` when asked,
//! `IPV6_V6ONLY` on IPv6 addresses, non-blocking, and `listen(backlog)`.
//!
//! A failed `bind` is returned as the `io::Error` built from its errno, so
//! the caller can word it as nginx does:
//! `bind() to 127.0.0.1:80 failed (98: Address already in use)`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// nginx's default listen backlog on Linux (`NGX_LISTEN_BACKLOG`).
pub const DEFAULT_BACKLOG: i32 = 511;

/// How to set up a listening socket (the parameters of `listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOpts {
    /// The `listen(2)` backlog (`backlog=`); 511 by default, as nginx on
    /// Linux. The kernel caps it at `net.core.somaxconn`.
    pub backlog: i32,
    /// Set `SO_REUSEPORT` (`reuseport`), so that every worker binds its own
    /// socket on the same address.
    pub reuseport: bool,
    /// For an IPv6 address, accept IPv6 connections only (`ipv6only=on`,
    /// nginx's default); ignored for IPv4.
    pub ipv6only: bool,
    /// `SO_RCVBUF` (`rcvbuf=`); accepted connections inherit it.
    pub rcvbuf: Option<usize>,
    /// `SO_SNDBUF` (`sndbuf=`); accepted connections inherit it.
    pub sndbuf: Option<usize>,
    /// TCP keep-alive probes for accepted connections (`so_keepalive=`).
    pub keepalive: Option<KeepAlive>,
    /// `TCP_DEFER_ACCEPT` (`deferred`): a connection is handed to accept
    /// once its first data has arrived.
    pub deferred: bool,
}

/// `so_keepalive=`: `SO_KEEPALIVE` on or off, and the idle time, probe
/// interval and probe count when given (the system's otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepAlive {
    /// `SO_KEEPALIVE`.
    pub on: bool,
    /// `TCP_KEEPIDLE`, seconds.
    pub idle: Option<u32>,
    /// `TCP_KEEPINTVL`, seconds.
    pub interval: Option<u32>,
    /// `TCP_KEEPCNT`.
    pub count: Option<u32>,
}

impl Default for ListenOpts {
    fn default() -> ListenOpts {
        ListenOpts {
            backlog: DEFAULT_BACKLOG,
            reuseport: false,
            ipv6only: true,
            rcvbuf: None,
            sndbuf: None,
            keepalive: None,
            deferred: false,
        }
    }
}

/// Creates a non-blocking TCP socket bound to `addr` and listening.
///
/// An error from any step is returned as the `io::Error` of its errno; an
/// address in use without `reuseport` (or bound by a socket without it)
/// gives `EADDRINUSE` from `bind`.
pub fn bind_listener(addr: SocketAddr, opts: &ListenOpts) -> io::Result<mio::net::TcpListener> {
    let fd = listen_socket(addr, opts)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, backlog(opts.backlog)?)?;
    Ok(mio::net::TcpListener::from_std(std::net::TcpListener::from(fd)))
}

/// A new non-blocking TCP socket for `addr`'s family with the options set,
/// not yet bound.
fn listen_socket(addr: SocketAddr, opts: &ListenOpts) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    // Close-on-exec: a CGI child must not inherit the listener.
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(family, SockType::Stream, flags, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if opts.reuseport {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if addr.is_ipv6() {
        // Set either way: the system default (net.ipv6.bindv6only) may be
        // either. Binding a specific IPv6 address that is not v4-mapped
        // makes the kernel turn it on regardless.
        setsockopt(&fd, sockopt::Ipv6V6Only, &opts.ipv6only)?;
    }
    if let Some(n) = opts.rcvbuf {
        setsockopt(&fd, sockopt::RcvBuf, &n)?;
    }
    if let Some(n) = opts.sndbuf {
        setsockopt(&fd, sockopt::SndBuf, &n)?;
    }
    if let Some(k) = opts.keepalive {
        setsockopt(&fd, sockopt::KeepAlive, &k.on)?;
        if let Some(v) = k.idle {
            setsockopt(&fd, sockopt::TcpKeepIdle, &v)?;
        }
        if let Some(v) = k.interval {
            setsockopt(&fd, sockopt::TcpKeepInterval, &v)?;
        }
        if let Some(v) = k.count {
            setsockopt(&fd, sockopt::TcpKeepCount, &v)?;
        }
    }
    if opts.deferred {
        // As nginx: one second, since there is no telling how long a
        // connection waited (syncookies bypass the deferred queue).
        defer_accept(&fd, 1)?;
    }
    Ok(fd)
}

/// Sets `TCP_DEFER_ACCEPT` to `seconds` (nix has no wrapper for it).
fn defer_accept(fd: &OwnedFd, seconds: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is an open socket for the whole call; the option value
    // is a live `c_int` whose size is passed with it, and the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// The backlog as nix takes it. nix refuses values at or above the libc
/// `SOMAXCONN`, which the kernel would merely cap at `net.core.somaxconn`:
/// those become "the system's maximum" (-1), which the kernel caps the same
/// way.
fn backlog(value: i32) -> io::Result<Backlog> {
    if value >= libc::SOMAXCONN {
        return Ok(Backlog::MAXALLOWABLE);
    }
    Backlog::new(value).map_err(io::Error::from)
}

/// True when an `accept` error means the process or system ran out of a
/// resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the worker should
/// stop accepting for a moment rather than spin on a ready listener that
/// fails every time.
pub fn accept_error_is_resource_limit(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
    use std::time::{Duration, Instant};

    use nix::sys::socket::getsockopt;

    fn localhost() -> SocketAddr {
        (Ipv4Addr::LOCALHOST, 0).into()
    }

    /// Accepts one connection from a non-blocking listener, within 5 s.
    fn accept_one(l: &mio::net::TcpListener) -> mio::net::TcpStream {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match l.accept() {
                Ok((s, _)) => return s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no connection arrived");
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    #[test]
    fn listens_non_blocking_and_accepts() {
        let l = bind_listener(localhost(), &ListenOpts::default()).unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        assert!(getsockopt(&l, sockopt::ReuseAddr).unwrap());
        assert!(!getsockopt(&l, sockopt::ReusePort).unwrap());
        assert!(getsockopt(&l, sockopt::AcceptConn).unwrap());
        // Non-blocking: nobody is connecting, accept returns at once.
        let err = l.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"ping").unwrap();
        let mut s = accept_one(&l);
        let mut got = [0u8; 4];
        s.set_nodelay(true).unwrap();
        // The accepted mio stream is non-blocking; wait for the bytes.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while n < 4 {
            match s.read(&mut got[n..]) {
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(&got, b"ping");
    }

    #[test]
    fn reuseport_lets_every_worker_bind_the_same_address() {
        let opts = ListenOpts { reuseport: true, ..ListenOpts::default() };
        let first = bind_listener(localhost(), &opts).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_listener(addr, &opts).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(getsockopt(&second, sockopt::ReusePort).unwrap());
        // Both sockets take connections for the one address: the kernel
        // spreads these two (same source address, different ports) by hash,
        // so only the total is certain.
        let _clients: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut accepted = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while accepted < 2 {
            for l in [&first, &second] {
                if l.accept().is_ok() {
                    accepted += 1;
                }
            }
            assert!(Instant::now() < deadline, "accepted {accepted} of 2");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn address_in_use_without_reuseport_is_the_bind_error() {
        let first = bind_listener(localhost(), &ListenOpts::default()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = bind_listener(addr, &ListenOpts::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        // Asking for reuseport does not help while the first socket has not.
        let opts = ListenOpts { reuseport: true, ..ListenOpts::default() };
        let err = bind_listener(addr, &opts).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    }

    #[test]
    fn ipv6_only_follows_the_option() {
        for ipv6only in [true, false] {
            let opts = ListenOpts { ipv6only, ..ListenOpts::default() };
            let fd = listen_socket((Ipv6Addr::LOCALHOST, 0).into(), &opts).unwrap();
            assert_eq!(getsockopt(&fd, sockopt::Ipv6V6Only).unwrap(), ipv6only);
            let fd = listen_socket(localhost(), &opts).unwrap();
            assert!(getsockopt(&fd, sockopt::Ipv6V6Only).is_err(), "IPv4 has no such option");
        }
    }

    #[test]
    fn ipv6_loopback_listens() {
        let l = bind_listener((Ipv6Addr::LOCALHOST, 0).into(), &ListenOpts::default()).unwrap();
        let addr = l.local_addr().unwrap();
        assert!(addr.is_ipv6());
        TcpStream::connect(addr).unwrap();
        accept_one(&l);
    }

    #[test]
    fn v4_mapped_address_needs_ipv6only_off() {
        let mapped: SocketAddr = (Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 0).into();
        assert!(bind_listener(mapped, &ListenOpts::default()).is_err());
        let opts = ListenOpts { ipv6only: false, ..ListenOpts::default() };
        let l = bind_listener(mapped, &opts).unwrap();
        // An IPv4 client reaches the IPv6 socket.
        let port = l.local_addr().unwrap().port();
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        accept_one(&l);
    }

    #[test]
    fn socket_options_are_set_on_the_listener() {
        let keepalive = KeepAlive { on: true, idle: Some(30), interval: Some(10), count: Some(3) };
        let opts = ListenOpts {
            rcvbuf: Some(64 * 1024),
            sndbuf: Some(32 * 1024),
            keepalive: Some(keepalive),
            deferred: true,
            ..ListenOpts::default()
        };
        let fd = listen_socket(localhost(), &opts).unwrap();
        // Linux doubles the buffer sizes asked for (room for its overhead).
        assert_eq!(getsockopt(&fd, sockopt::RcvBuf).unwrap(), 128 * 1024);
        assert_eq!(getsockopt(&fd, sockopt::SndBuf).unwrap(), 64 * 1024);
        assert!(getsockopt(&fd, sockopt::KeepAlive).unwrap());
        assert_eq!(getsockopt(&fd, sockopt::TcpKeepIdle).unwrap(), 30);
        assert_eq!(getsockopt(&fd, sockopt::TcpKeepInterval).unwrap(), 10);
        assert_eq!(getsockopt(&fd, sockopt::TcpKeepCount).unwrap(), 3);
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live socket, and `value`/`len` are valid for the write.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert!(value > 0, "TCP_DEFER_ACCEPT {value}");
        // Off by default.
        let fd = listen_socket(localhost(), &ListenOpts::default()).unwrap();
        assert!(!getsockopt(&fd, sockopt::KeepAlive).unwrap());
    }

    #[test]
    fn backlog_values() {
        assert_eq!(i32::from(backlog(511).unwrap()), 511);
        assert_eq!(i32::from(backlog(65_535).unwrap()), -1);
        assert!(backlog(-5).is_err());
        let opts = ListenOpts { backlog: 100_000, ..ListenOpts::default() };
        bind_listener(localhost(), &opts).unwrap();
    }

    #[test]
    fn resource_limits_are_told_apart_from_other_accept_errors() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(accept_error_is_resource_limit(&e), "{e}");
        }
        for errno in [libc::ECONNABORTED, libc::EAGAIN, libc::EINTR, libc::EPERM] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(!accept_error_is_resource_limit(&e), "{e}");
        }
        let e = io::Error::other("not an errno");
        assert!(!accept_error_is_resource_limit(&e));
    }
}
