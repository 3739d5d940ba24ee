//! The upstream connection: TCP or a unix-domain socket, non-blocking,
//! registered with the worker's poll by the request that uses it.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::upstream::PeerAddr;

/// An upstream socket.
#[derive(Debug)]
pub enum UpstreamStream {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// A unix-domain stream socket.
    Unix(mio::net::UnixStream),
}

impl UpstreamStream {
    /// Starts a non-blocking connect; it completes when the socket turns
    /// writable (see [`UpstreamStream::connect_result`]).
    pub fn connect(addr: &PeerAddr) -> io::Result<UpstreamStream> {
        match addr {
            PeerAddr::Inet(a) => {
                let s = mio::net::TcpStream::connect(*a)?;
                Ok(UpstreamStream::Tcp(s))
            }
            PeerAddr::Unix(p) => Ok(UpstreamStream::Unix(mio::net::UnixStream::connect(p)?)),
        }
    }

    /// After a writable event: `Ok(true)` connected, `Ok(false)` still in
    /// progress, `Err` the connect failed (ECONNREFUSED, ...).
    pub fn connect_result(&self) -> io::Result<bool> {
        let err = match self {
            UpstreamStream::Tcp(s) => s.take_error()?,
            UpstreamStream::Unix(s) => s.take_error()?,
        };
        if let Some(e) = err {
            return Err(e);
        }
        let peer = match self {
            UpstreamStream::Tcp(s) => s.peer_addr().map(|_| ()),
            UpstreamStream::Unix(s) => s.peer_addr().map(|_| ()),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Turns TCP keep-alive probes on (`proxy_socket_keepalive on`).
    pub fn set_keepalive(&self) {
        if let UpstreamStream::Tcp(s) = self {
            let _ = nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::KeepAlive, &true);
        }
    }

    /// Sets TCP_NODELAY (requests are small writes the upstream waits for).
    pub fn set_nodelay(&self) {
        if let UpstreamStream::Tcp(s) = self {
            let _ = s.set_nodelay(true);
        }
    }
}

impl AsFd for UpstreamStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            UpstreamStream::Tcp(s) => s.as_fd(),
            UpstreamStream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for UpstreamStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.read(buf),
            UpstreamStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for UpstreamStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.write(buf),
            UpstreamStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for UpstreamStream {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.register(registry, token, interests),
            UpstreamStream::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.reregister(registry, token, interests),
            UpstreamStream::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.deregister(registry),
            UpstreamStream::Unix(s) => s.deregister(registry),
        }
    }
}
