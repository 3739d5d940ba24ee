//! The HTTP module trait, as nginx's `ngx_http_module_t`, and the handler and
//! filter traits a module registers.
//!
//! A module is a value implementing [`HttpModule`]. When the module list is
//! built each module gets an index, stored in its [`ConfKey`] (a `static` the
//! module owns); a context's confs are a vector of boxed confs in module
//! order, and `r.loc_conf(&MY_KEY)` turns the index plus a downcast into
//! `&MyLocConf` — O(1), typed, no string look-up at request time.
//!
//! Life of a configuration: `preconfiguration` (add variables) → create
//! confs and run directive setters while the file is read → `init_main_conf`
//! → `merge_srv_conf` / `merge_loc_conf` down the tree → `postconfiguration`
//! (register phase handlers and filters) → each location's filter chains,
//! from the filters' `wanted_in`.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sluice_core::conf::Directive;
use sluice_core::Chain;

use crate::config::{HttpConfCx, PostConf, PreConf};
use crate::location::Location;
use crate::request::Request;

/// A module's conf struct, type-erased.
pub type AnyConf = Box<dyn Any + Send + Sync>;

/// A module's index in the module list, set once when the list is built.
#[derive(Debug)]
pub struct ModuleIndex(AtomicUsize);

impl ModuleIndex {
    /// Not yet bound.
    pub const fn new() -> Self {
        ModuleIndex(AtomicUsize::new(usize::MAX))
    }

    /// The index; `usize::MAX` before the module list was built.
    #[inline]
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn bind(&self, index: usize) {
        self.0.store(index, Ordering::Relaxed);
    }
}

impl Default for ModuleIndex {
    fn default() -> Self {
        ModuleIndex::new()
    }
}

type ConfTypes<M, S, L> = PhantomData<fn() -> (M, S, L)>;

/// The typed key of a module's confs: main `M`, server `S`, location `L`.
/// A module declares one as a `static` and returns its index from
/// [`HttpModule::index`].
pub struct ConfKey<M, S, L> {
    index: ModuleIndex,
    _confs: ConfTypes<M, S, L>,
}

impl<M, S, L> std::fmt::Debug for ConfKey<M, S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfKey").field("index", &self.index.get()).finish()
    }
}

impl<M, S, L> ConfKey<M, S, L> {
    /// A key, bound when the module list is built.
    pub const fn new() -> Self {
        ConfKey { index: ModuleIndex::new(), _confs: PhantomData }
    }

    /// The module index cell (for [`HttpModule::index`]).
    pub fn index(&'static self) -> &'static ModuleIndex {
        &self.index
    }

    #[inline]
    pub(crate) fn slot(&self) -> usize {
        self.index.get()
    }
}

impl<M, S, L> Default for ConfKey<M, S, L> {
    fn default() -> Self {
        ConfKey::new()
    }
}

/// Downcasts a type-erased conf. A mismatch is a bug in a module (its
/// `create_*` and its key disagree) and shows at start-up.
pub fn downcast<T: 'static>(conf: &dyn Any) -> &T {
    match conf.downcast_ref::<T>() {
        Some(c) => c,
        None => panic!("conf is not a {}", std::any::type_name::<T>()),
    }
}

/// Mutable [`downcast`].
pub fn downcast_mut<T: 'static>(conf: &mut dyn Any) -> &mut T {
    match conf.downcast_mut::<T>() {
        Some(c) => c,
        None => panic!("conf is not a {}", std::any::type_name::<T>()),
    }
}

/// An HTTP module, mirroring `ngx_http_module_t` plus its command table.
pub trait HttpModule: Send + Sync + 'static {
    /// The module's name (`-V` lists it; nginx's `ngx_http_gzip_module`
    /// would be `gzip`).
    fn name(&self) -> &'static str;
    /// The module's conf key index.
    fn index(&self) -> &'static ModuleIndex;
    /// The directive table.
    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        Vec::new()
    }
    /// Adds variables (before the configuration is read).
    fn preconfiguration(&self, _cf: &mut PreConf) -> Result<(), String> {
        Ok(())
    }
    /// Creates the main conf (one per `http` block).
    fn create_main_conf(&self) -> AnyConf {
        Box::new(())
    }
    /// Resolves main-conf defaults after the `http` block was read.
    fn init_main_conf(&self, _conf: &mut dyn Any) -> Result<(), String> {
        Ok(())
    }
    /// Creates a server conf (at `http` and in every `server`).
    fn create_srv_conf(&self) -> AnyConf {
        Box::new(())
    }
    /// Merges a server conf from the `http` level one.
    fn merge_srv_conf(&self, _parent: &dyn Any, _child: &mut dyn Any) -> Result<(), String> {
        Ok(())
    }
    /// Creates a location conf (at `http`, `server` and every `location`).
    fn create_loc_conf(&self) -> AnyConf {
        Box::new(())
    }
    /// Merges a location conf from its parent (server or outer location).
    fn merge_loc_conf(&self, _parent: &dyn Any, _child: &mut dyn Any) -> Result<(), String> {
        Ok(())
    }
    /// Registers phase handlers and filters.
    fn postconfiguration(&self, _cf: &mut PostConf) -> Result<(), String> {
        Ok(())
    }
    /// Reopens the module's log files (USR1); gets its main conf.
    fn reopen_files(&self, _main: &dyn Any) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a phase handler (or a content handler) answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Not mine: try the next handler of this phase.
    Declined,
    /// This phase is done: go on to the next phase.
    Ok,
    /// Waiting for an event; a [`Task`] resumes the request later.
    Again,
    /// The request was handled (response sent or being sent).
    Done,
    /// Finish the request with this status and its error page.
    Status(u16),
}

/// The request phases, in nginx's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Right after the head was read (realip).
    PostRead = 0,
    /// Rewrites at server level.
    ServerRewrite,
    /// Location look-up (internal).
    FindConfig,
    /// Rewrites at location level.
    Rewrite,
    /// Redirects to find_config when the URI changed (internal).
    PostRewrite,
    /// Before access checks (limit_req, limit_conn).
    Preaccess,
    /// Access checks (allow/deny, auth_basic).
    Access,
    /// Applies the access result (internal).
    PostAccess,
    /// try_files, mirror.
    Precontent,
    /// The response is produced.
    Content,
    /// Logging, after the response.
    Log,
}

impl Phase {
    /// Number of phases.
    pub const COUNT: usize = 11;
}

/// A phase handler or a location's content handler.
pub trait PhaseHandler: Send + Sync {
    /// Handles the request in its phase.
    fn handle(&self, r: &mut Request) -> Flow;

    /// Whether this handler can have work for a request in a location with
    /// these (merged) confs. Where it answers false, the phase engine
    /// passes it by as if it had declined, without calling it. Answer false
    /// only when the handler would decline every request there (no
    /// `allow`/`deny`, `auth_basic off`, no rewrite directives). The
    /// default keeps the handler everywhere; [`Gated`] gives a plain
    /// function handler a test.
    fn wanted_in(&self, loc: &Location) -> bool {
        let _ = loc;
        true
    }
}

/// A function handler with its [`PhaseHandler::wanted_in`] test.
pub struct Gated<F> {
    /// The handler.
    pub handler: F,
    /// Where it can have work.
    pub wanted_in: fn(&Location) -> bool,
}

impl<F> PhaseHandler for Gated<F>
where
    F: Fn(&mut Request) -> Flow + Send + Sync,
{
    fn handle(&self, r: &mut Request) -> Flow {
        (self.handler)(r)
    }

    fn wanted_in(&self, loc: &Location) -> bool {
        (self.wanted_in)(loc)
    }
}

impl<F> PhaseHandler for F
where
    F: Fn(&mut Request) -> Flow + Send + Sync,
{
    fn handle(&self, r: &mut Request) -> Flow {
        self(r)
    }
}

/// Why a waiting request is resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The client connection drained its pending output: produce more.
    Writable,
    /// The request body has been read (see `Request::read_body`).
    BodyRead,
    /// A descriptor the task registered is ready (role, readable, writable).
    Io {
        /// The role the task registered the descriptor under.
        role: u8,
        /// Readable readiness.
        readable: bool,
        /// Writable readiness.
        writable: bool,
        /// The peer closed its sending side (or the socket failed): reads
        /// will end in EOF or an error, so a reader must not take a short
        /// read as "drained" and wait for another event, which will not
        /// come.
        read_closed: bool,
    },
    /// The task's timer fired (see `Request::set_task_deadline`).
    Timer,
    /// The client closed its side of the connection (or reset it) while
    /// the task waited: a proxy gives up on the upstream (nginx's 499).
    ClientClosed,
    /// The client sent bytes, and the task asked to hear of them
    /// (`Request::set_reads_client`): an upgraded connection's tunnel.
    ClientReadable,
}

/// A request's pending work (a streaming producer, a body reader's
/// continuation, an upstream state machine): the connection calls it back
/// when what it waits for happens.
pub trait Task {
    /// Continues the work. `Flow::Again` keeps waiting; anything else ends
    /// the task and finalizes the request with that result.
    fn resume(&mut self, r: &mut Request, why: Resume) -> Flow;

    /// When the task wants [`Resume::Timer`] if nothing else happens
    /// first (an upstream's connect, send or read timeout). Asked after
    /// every event; the timer fires once per deadline passed.
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
}

/// A filter's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterStatus {
    /// Passed on.
    Ok,
    /// Downstream is full: the caller will be resumed with
    /// [`Resume::Writable`] when it drains.
    Again,
}

/// A filter's failure: the connection is closed and the message logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError(pub String);

/// What filters return.
pub type FilterResult = Result<FilterStatus, FilterError>;

/// A header filter: runs once per response, may change status and headers.
pub trait HeaderFilter: Send + Sync {
    /// Processes the response head, then calls `next`.
    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult;

    /// Whether this filter can have work in a location with these (merged)
    /// confs. When the configuration is loaded each location gets its own
    /// chain of the filters that answer true, so a response there does not
    /// pass through the others at all. Answer false only when the location
    /// conf alone rules out every response (`gzip off`, no `add_header`);
    /// the filter's own pass-through guard still decides per response where
    /// it stays in. The default keeps the filter in every chain.
    fn wanted_in(&self, loc: &Location) -> bool {
        let _ = loc;
        true
    }
}

/// A body filter: runs for every chain the handler sends.
pub trait BodyFilter: Send + Sync {
    /// Processes a chain, then passes output on with `next`.
    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult;

    /// As [`HeaderFilter::wanted_in`], for the location's body chain. A body
    /// filter that only acts on what its header filter set up answers as
    /// that header filter does.
    fn wanted_in(&self, loc: &Location) -> bool {
        let _ = loc;
        true
    }
}

/// What one location's requests go through: the filters of the registered
/// chains that answered true to `wanted_in` for its confs, in chain order,
/// and which phase handlers answered false.
pub(crate) struct LocationChains {
    pub(crate) header: Box<[Arc<dyn HeaderFilter>]>,
    pub(crate) body: Box<[Arc<dyn BodyFilter>]>,
    /// Per phase, bit `i` set: the phase's handler `i` is passed by. A
    /// mask over the registered list, not a shorter list, so a handler's
    /// index means the same in every location (a rewrite `if` block
    /// changes the location in the middle of a phase).
    pub(crate) phase_skip: [u64; Phase::COUNT],
}

impl LocationChains {
    pub(crate) fn for_location(
        loc: &Location,
        header: &[Arc<dyn HeaderFilter>],
        body: &[Arc<dyn BodyFilter>],
        phases: &[Vec<Arc<dyn PhaseHandler>>; Phase::COUNT],
    ) -> LocationChains {
        let mut phase_skip = [0u64; Phase::COUNT];
        for (skip, handlers) in phase_skip.iter_mut().zip(phases) {
            // Past 64 handlers in one phase, the rest are always called.
            for (i, h) in handlers.iter().enumerate().take(64) {
                if !h.wanted_in(loc) {
                    *skip |= 1 << i;
                }
            }
        }
        LocationChains {
            header: header.iter().filter(|f| f.wanted_in(loc)).cloned().collect(),
            body: body.iter().filter(|f| f.wanted_in(loc)).cloned().collect(),
            phase_skip,
        }
    }
}

/// The header filters below the current one.
#[derive(Clone, Copy)]
pub struct NextHeader<'a> {
    pub(crate) rest: &'a [Arc<dyn HeaderFilter>],
}

impl NextHeader<'_> {
    /// Calls the next header filter.
    pub fn call(self, r: &mut Request) -> FilterResult {
        match self.rest.split_first() {
            Some((f, rest)) => f.header_filter(r, NextHeader { rest }),
            None => Ok(FilterStatus::Ok),
        }
    }
}

/// The body filters below the current one.
#[derive(Clone, Copy)]
pub struct NextBody<'a> {
    pub(crate) rest: &'a [Arc<dyn BodyFilter>],
}

impl NextBody<'_> {
    /// Calls the next body filter.
    pub fn call(self, r: &mut Request, chain: Chain) -> FilterResult {
        match self.rest.split_first() {
            Some((f, rest)) => f.body_filter(r, chain, NextBody { rest }),
            None => Ok(FilterStatus::Ok),
        }
    }
}
