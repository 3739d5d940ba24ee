//! A request's own descriptors: how a task (the proxy's upstream state
//! machine, a CGI child's pipes) registers sockets with its worker's poll.
//!
//! Each worker thread keeps a handle on its `mio::Registry` here, set when
//! the worker starts; a request registers a descriptor under a token made of
//! its connection's slot and generation and a role the task picks
//! ([`sluice_core::event::ROLE_TASK_FIRST`] ..= `ROLE_TASK_LAST`). The
//! worker routes that token's events back to the connection, which resumes
//! the task with [`crate::Resume::Io`]. One owner throughout: the task owns
//! the socket; dropping the socket closes it, which removes it from the
//! poll.

use std::cell::RefCell;
use std::io;

use mio::event::Source;
use mio::{Interest, Registry};
use sluice_core::event::{token, Role, ROLE_TASK_FIRST, ROLE_TASK_LAST};

use crate::request::Request;

thread_local! {
    static REGISTRY: RefCell<Option<Registry>> = const { RefCell::new(None) };
}

/// Installs this thread's registry (the worker does, before its loop).
pub(crate) fn install(registry: Registry) {
    REGISTRY.with(|r| *r.borrow_mut() = Some(registry));
}

fn with_registry<T>(f: impl FnOnce(&Registry) -> io::Result<T>) -> io::Result<T> {
    REGISTRY.with(|r| match r.borrow().as_ref() {
        Some(reg) => f(reg),
        None => Err(io::Error::other("no event loop on this thread")),
    })
}

fn check_role(role: Role) -> io::Result<()> {
    if (ROLE_TASK_FIRST..=ROLE_TASK_LAST).contains(&role) {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "role reserved for the worker"))
    }
}

impl Request {
    /// Registers a descriptor the request's task waits on: its events come
    /// back as `Resume::Io { role, .. }`. Edge-triggered, as the client
    /// socket: read and write until `WouldBlock` before waiting again.
    pub fn register_io(&self, source: &mut impl Source, role: Role, interest: Interest) -> io::Result<()> {
        check_role(role)?;
        let tok = token(self.conn.slot, role, self.conn.generation);
        with_registry(|reg| reg.register(source, tok, interest))
    }

    /// Changes a registered descriptor's interest (or role).
    pub fn reregister_io(&self, source: &mut impl Source, role: Role, interest: Interest) -> io::Result<()> {
        check_role(role)?;
        let tok = token(self.conn.slot, role, self.conn.generation);
        with_registry(|reg| reg.reregister(source, tok, interest))
    }

    /// Removes a descriptor from the poll (before it is kept for another
    /// request, e.g. in an upstream keep-alive pool).
    pub fn deregister_io(&self, source: &mut impl Source) -> io::Result<()> {
        with_registry(|reg| reg.deregister(source))
    }
}
