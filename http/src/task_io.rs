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
use sluice_core::event::{token, Role, ROLE_ROUTED, ROLE_TASK_FIRST, ROLE_TASK_LAST};

use crate::request::Request;

thread_local! {
    static REGISTRY: RefCell<Option<Registry>> = const { RefCell::new(None) };
    /// Routes: index → the connection (slot, generation) and role its
    /// descriptor's events go to now, or `None` while it is parked.
    static ROUTES: RefCell<Routes> = const { RefCell::new(Routes { table: Vec::new(), free: Vec::new() }) };
}

struct Routes {
    table: Vec<Option<(usize, u16, Role)>>,
    free: Vec<usize>,
}

/// A descriptor's route (see [`Request::register_routed`]). Dropping it
/// frees the route; drop it with the descriptor (closing the descriptor
/// takes it out of the poll).
#[derive(Debug)]
pub struct Route(usize);

impl Drop for Route {
    fn drop(&mut self) {
        // At thread exit the table may be gone before a pool that holds
        // routes: nothing is left to free then.
        let _ = ROUTES.try_with(|r| {
            let mut r = r.borrow_mut();
            r.table[self.0] = None;
            r.free.push(self.0);
        });
    }
}

impl Route {
    /// Parks the route: the descriptor's events are dropped until a
    /// request claims it again ([`Request::claim_route`]).
    pub fn park(&self) {
        ROUTES.with(|r| r.borrow_mut().table[self.0] = None);
    }
}

/// Where the events of route `index` go now: (slot, generation, role).
pub(crate) fn route(index: usize) -> Option<(usize, u16, Role)> {
    ROUTES.with(|r| r.borrow().table.get(index).copied().flatten())
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

    /// Registers a descriptor through a route, its events going to this
    /// request under `role`. The route can later be handed to another
    /// request ([`Request::claim_route`]) without a system call.
    pub fn register_routed(&self, source: &mut impl Source, role: Role, interest: Interest) -> io::Result<Route> {
        check_role(role)?;
        let target = Some((self.conn.slot, self.conn.generation, role));
        let index = ROUTES.with(|r| {
            let mut r = r.borrow_mut();
            match r.free.pop() {
                Some(i) => {
                    r.table[i] = target;
                    i
                }
                None => {
                    r.table.push(target);
                    r.table.len() - 1
                }
            }
        });
        let route = Route(index);
        with_registry(|reg| reg.register(source, token(index, ROLE_ROUTED, 0), interest))?;
        Ok(route)
    }

    /// Points a route at this request: the descriptor's events come to it
    /// under `role` from now on.
    pub fn claim_route(&self, route: &Route, role: Role) {
        ROUTES.with(|r| r.borrow_mut().table[route.0] = Some((self.conn.slot, self.conn.generation, role)));
    }
}
