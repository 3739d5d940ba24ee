//! Reading an `http { }` block: directive dispatch, conf create/merge, and
//! the frozen [`HttpConfig`] that workers serve from.
//!
//! While a block is read, [`HttpConfCx`] holds the confs of the enclosing
//! contexts as stacks (main; server; location, nested locations on top). A
//! directive row names the level it writes; the dispatcher hands its setter
//! the conf of that level for the row's module. Block directives (`server`,
//! `location`, `types`, ...) are ordinary rows whose setters push new confs
//! and read their block recursively, as nginx's do.
//!
//! After the block: `init_main_conf`, then merges child ← parent for every
//! server and location, then `postconfiguration` (handlers and filters),
//! then each location gets its filter chains (the registered filters whose
//! `wanted_in` accepts its confs), then listening addresses are grouped. The result is immutable and shared
//! by all workers behind an `Arc`.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::conf::{ConfError, Contexts, Directive, Level, Origin, SetError, Statement};

use crate::core_module::{self, CoreLocConf, CoreMainConf, CoreSrvConf, LocationBuild, ServerBuild};
use crate::listen::{self, ListenSite};
use crate::location::{LocMatch, Location, LocationTree};
use crate::module::{AnyConf, BodyFilter, HeaderFilter, HttpModule, Phase, PhaseHandler};
use crate::parse::HeadLimits;
use crate::phase::Satisfy;
use crate::request::Request;
use crate::variables::{ComplexValue, Variables};

/// The compiled-in HTTP modules, in order, with their directive tables.
pub struct Modules {
    list: Vec<Arc<dyn HttpModule>>,
    tables: Vec<Vec<Directive<HttpConfCx>>>,
    by_name: HashMap<&'static str, Vec<(usize, usize)>>,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.list.iter().map(|m| m.name())).finish()
    }
}

impl Modules {
    /// Builds the module list: binds each module's index and collects its
    /// directive table. The http core module is added first.
    pub fn new(mut list: Vec<Arc<dyn HttpModule>>) -> Result<Arc<Modules>, String> {
        list.insert(0, Arc::new(core_module::CoreModule));
        let mut tables = Vec::with_capacity(list.len());
        let mut by_name: HashMap<&'static str, Vec<(usize, usize)>> = HashMap::new();
        for (i, m) in list.iter().enumerate() {
            if list[..i].iter().any(|o| o.name() == m.name()) {
                return Err(format!("module \"{}\" is listed twice", m.name()));
            }
            m.index().bind(i);
            let table = m.directives();
            for (j, d) in table.iter().enumerate() {
                by_name.entry(d.name).or_default().push((i, j));
            }
            tables.push(table);
        }
        Ok(Arc::new(Modules { list, tables, by_name }))
    }

    /// The modules, in order.
    pub fn list(&self) -> &[Arc<dyn HttpModule>] {
        &self.list
    }

    /// True when some module declares `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

/// A conf slot taken out of its stack while its setter runs.
struct Taken;

/// The parse context of an `http` block, handed to every setter.
pub struct HttpConfCx {
    /// The configuration prefix (relative paths resolve against it).
    pub prefix: PathBuf,
    /// Variables, for compiling complex values.
    pub vars: Variables,
    modules: Arc<Modules>,
    main: Vec<AnyConf>,
    srv: Vec<Vec<AnyConf>>,
    loc: Vec<Vec<AnyConf>>,
    /// What kind of block each entry of `loc` belongs to (the innermost
    /// last), for directives whose meaning depends on it (`proxy_pass`).
    loc_kinds: Vec<LocationKind>,
}

/// The kind of block a location-level directive is read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocationKind {
    /// At `http` or `server` level.
    Server,
    /// `location /prefix` or `location ^~ /prefix` (the name).
    Prefix(String),
    /// `location = /exact` (the name).
    Exact(String),
    /// `location ~ regex` / `~* regex`.
    Regex,
    /// `location @name`.
    Named,
    /// Inside `if { }`.
    If,
}

impl std::fmt::Debug for HttpConfCx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfCx").field("prefix", &self.prefix).finish()
    }
}

impl HttpConfCx {
    /// Reads the statements of a block in context `ctx`.
    pub fn parse_block(&mut self, stmts: &[Statement], ctx: Contexts) -> Result<(), ConfError> {
        let modules = self.modules.clone();
        for stmt in stmts {
            let Some(candidates) = modules.by_name.get(stmt.name.as_str()) else {
                return Err(stmt.error(format!("unknown directive \"{}\"", stmt.name)));
            };
            let Some(&(m, d)) = candidates.iter().find(|&&(m, d)| modules.tables[m][d].contexts.contains(ctx)) else {
                return Err(stmt.error(format!("\"{}\" directive is not allowed here", stmt.name)));
            };
            let row = &modules.tables[m][d];
            row.check_shape(stmt).map_err(|e| stmt.error(e))?;
            let mut conf = self.take(row.level, m);
            let result = (row.set)(self, conf.as_mut(), stmt);
            self.put(row.level, m, conf);
            result.map_err(|e| e.locate(stmt))?;
        }
        Ok(())
    }

    fn slot(&mut self, level: Level, m: usize) -> &mut AnyConf {
        match level {
            Level::Main => &mut self.main[m],
            Level::Srv => &mut self.srv.last_mut().expect("server confs")[m],
            Level::Loc => &mut self.loc.last_mut().expect("location confs")[m],
        }
    }

    fn take(&mut self, level: Level, m: usize) -> AnyConf {
        let conf = std::mem::replace(self.slot(level, m), Box::new(Taken));
        assert!(!conf.is::<Taken>(), "a setter re-entered its own conf");
        conf
    }

    fn put(&mut self, level: Level, m: usize, conf: AnyConf) {
        *self.slot(level, m) = conf;
    }

    /// Fresh server confs of every module.
    pub(crate) fn create_srv_confs(&self) -> Vec<AnyConf> {
        self.modules.list.iter().map(|m| m.create_srv_conf()).collect()
    }

    /// Fresh location confs of every module.
    pub(crate) fn create_loc_confs(&self) -> Vec<AnyConf> {
        self.modules.list.iter().map(|m| m.create_loc_conf()).collect()
    }

    /// Reads a `server { }` block with fresh server and location confs.
    pub(crate) fn read_server(&mut self, block: &[Statement]) -> Result<(Vec<AnyConf>, Vec<AnyConf>), ConfError> {
        self.srv.push(self.create_srv_confs());
        self.loc.push(self.create_loc_confs());
        let r = self.parse_block(block, Contexts::HTTP_SRV);
        let loc = self.loc.pop().expect("pushed above");
        let srv = self.srv.pop().expect("pushed above");
        r.map(|_| (srv, loc))
    }

    /// Reads a `location { }` block with fresh location confs.
    pub(crate) fn read_location(&mut self, block: &[Statement], kind: LocationKind) -> Result<Vec<AnyConf>, ConfError> {
        self.loc.push(self.create_loc_confs());
        self.loc_kinds.push(kind);
        let r = self.parse_block(block, Contexts::HTTP_LOC);
        self.loc_kinds.pop();
        let loc = self.loc.pop().expect("pushed above");
        r.map(|_| loc)
    }

    /// Reads the block of an anonymous location (nginx's `if`) in context
    /// `ctx` (`HTTP_SIF` or `HTTP_LIF`) with fresh location confs; they are
    /// merged from the enclosing location's when the tree is frozen. The
    /// caller may take what its module collected, then hands the confs to
    /// [`HttpConfCx::add_anonymous_location`].
    pub fn read_anonymous_location(&mut self, block: &[Statement], ctx: Contexts) -> Result<Vec<AnyConf>, ConfError> {
        self.loc.push(self.create_loc_confs());
        self.loc_kinds.push(LocationKind::If);
        let r = self.parse_block(block, ctx);
        self.loc_kinds.pop();
        let loc = self.loc.pop().expect("pushed above");
        r.map(|_| loc)
    }

    /// The kind of block the directive being read is in.
    pub fn location_kind(&self) -> LocationKind {
        self.loc_kinds.last().cloned().unwrap_or(LocationKind::Server)
    }

    /// Adds an anonymous location inside the location being read; returns
    /// its number there, for [`crate::location::Location::anonymous`].
    pub fn add_anonymous_location(&mut self, confs: Vec<AnyConf>, origin: Origin) -> Result<usize, SetError> {
        let core = self.loc.last_mut().expect("location confs")[0]
            .downcast_mut::<CoreLocConf>()
            .ok_or("an anonymous location is added from inside the core module")?;
        let n = core.locations.iter().filter(|l| matches!(l.matcher, LocMatch::Anonymous(_))).count();
        let matcher = LocMatch::Anonymous(Box::new(LocMatch::ServerLevel));
        core.locations.push(LocationBuild { matcher, confs, origin });
        Ok(n)
    }

    /// Sets the content handler of the location being read (as `proxy_pass`
    /// sets nginx's `clcf->handler`). Not inherited by nested locations.
    pub fn set_content_handler(&mut self, handler: Arc<dyn PhaseHandler>) -> Result<(), SetError> {
        let core = self.loc.last_mut().expect("location confs")[0]
            .downcast_mut::<CoreLocConf>()
            .ok_or("a content handler is set from inside the core module")?;
        core.content_handler = Some(handler);
        Ok(())
    }

    /// Makes the location being read answer its name without the trailing
    /// slash with a 301 to the name (nginx's `auto_redirect`, which
    /// `proxy_pass` and the other pass handlers set).
    pub fn set_auto_redirect(&mut self) -> Result<(), SetError> {
        let core = self.loc.last_mut().expect("location confs")[0]
            .downcast_mut::<CoreLocConf>()
            .ok_or("auto_redirect is set from inside the core module")?;
        core.auto_redirect = true;
        Ok(())
    }

    /// Runs `f` on a module's main conf (e.g. from a location-level
    /// directive that registers something for the whole `http` block).
    pub fn with_main_conf<M: 'static, S, L, R>(
        &mut self,
        key: &crate::module::ConfKey<M, S, L>,
        f: impl FnOnce(&mut M) -> R,
    ) -> R {
        f(crate::module::downcast_mut(self.main[key.slot()].as_mut()))
    }

    /// Reads a block that has server confs of its own, in context `ctx`:
    /// fresh server confs of every module are on top while its statements
    /// run, and are returned (nginx gives each `upstream { }` its own, so a
    /// module's directives there fill that block's conf).
    pub fn read_srv_block(&mut self, block: &[Statement], ctx: Contexts) -> Result<Vec<AnyConf>, ConfError> {
        self.srv.push(self.create_srv_confs());
        let r = self.parse_block(block, ctx);
        let srv = self.srv.pop().expect("pushed above");
        r.map(|_| srv)
    }

    /// Runs `f` on another module's server conf of the block being read
    /// (a balancer directive of one module fills the upstream module's conf
    /// of its `upstream { }` block, as nginx's
    /// `ngx_http_conf_get_module_srv_conf` lets it). Not for the calling
    /// row's own conf: that one is handed to its setter.
    pub fn with_srv_conf<M, S: 'static, L, R>(
        &mut self,
        key: &crate::module::ConfKey<M, S, L>,
        f: impl FnOnce(&mut S) -> R,
    ) -> R {
        let slot = key.slot();
        let conf = &mut self.srv.last_mut().expect("server confs")[slot];
        f(crate::module::downcast_mut(conf.as_mut()))
    }

    /// Compiles text with variables.
    pub fn compile(&self, text: &str) -> Result<ComplexValue, SetError> {
        ComplexValue::compile(text, &self.vars).map_err(SetError::Msg)
    }

    /// Resolves a path against the prefix.
    pub fn full_path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.prefix.join(path)
        }
    }
}

/// What `preconfiguration` gets: the variable registry.
#[derive(Debug)]
pub struct PreConf<'a> {
    /// Add variables here.
    pub vars: &'a mut Variables,
    /// The statements of the `http` block (includes expanded), for a module
    /// that declares variables its directives define anywhere in the block
    /// (`set $x`), since nginx lets them be used before that line.
    pub block: &'a [Statement],
}

/// What `postconfiguration` gets: where to register handlers and filters.
pub struct PostConf<'a> {
    pub(crate) phases: &'a mut [Vec<Arc<dyn PhaseHandler>>; Phase::COUNT],
    pub(crate) header_filters: &'a mut Vec<Arc<dyn HeaderFilter>>,
    pub(crate) body_filters: &'a mut Vec<Arc<dyn BodyFilter>>,
    satisfy: &'a mut SatisfyFn,
    main: &'a [AnyConf],
    /// The configuration prefix.
    pub prefix: &'a Path,
    /// Variables, for compiling complex values.
    pub vars: &'a Variables,
}

impl std::fmt::Debug for PostConf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostConf").finish()
    }
}

impl PostConf<'_> {
    /// Adds a handler to a phase (handlers of a phase run in the order added).
    pub fn add_phase_handler(&mut self, phase: Phase, h: Arc<dyn PhaseHandler>) {
        self.phases[phase as usize].push(h);
    }

    /// Pushes a header filter on top: it runs before those pushed earlier.
    pub fn push_header_filter(&mut self, f: Arc<dyn HeaderFilter>) {
        self.header_filters.insert(0, f);
    }

    /// Pushes a body filter on top: it runs before those pushed earlier.
    pub fn push_body_filter(&mut self, f: Arc<dyn BodyFilter>) {
        self.body_filters.insert(0, f);
    }

    /// A module's main conf.
    pub fn main_conf<M: 'static, S, L>(&self, key: &crate::module::ConfKey<M, S, L>) -> &M {
        crate::module::downcast(self.main[key.slot()].as_ref())
    }

    /// Tells the phase engine how to combine the access phase's answers for
    /// a request (the module that owns `satisfy` registers this).
    pub fn set_access_satisfy(&mut self, f: SatisfyFn) {
        *self.satisfy = f;
    }
}

/// Answers a request's `satisfy` mode (see [`PostConf::set_access_satisfy`]).
pub type SatisfyFn = fn(&Request) -> Satisfy;

fn satisfy_all(_: &Request) -> Satisfy {
    Satisfy::All
}

/// One virtual server, frozen.
pub struct Server {
    pub(crate) srv_confs: Vec<AnyConf>,
    /// The server-level location: its confs apply where no location matches.
    pub(crate) root: Arc<Location>,
    /// `@name` locations.
    pub(crate) named: HashMap<String, Arc<Location>>,
    /// The first server name (`$server_name`).
    pub name: String,
    /// Where the `server` block was written.
    pub origin: Origin,
    /// What reading a request head on this server's addresses obeys (from
    /// its merged core conf, made once here rather than per head read).
    pub(crate) head_limits: HeadLimits,
    /// `client_header_timeout`.
    pub(crate) header_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("name", &self.name).finish()
    }
}

impl Server {
    /// The core server conf.
    pub fn core(&self) -> &CoreSrvConf {
        crate::module::downcast(self.srv_confs[0].as_ref())
    }
}

/// A whole `http { }` block, ready to serve.
pub struct HttpConfig {
    pub(crate) modules: Arc<Modules>,
    pub(crate) main_confs: Vec<AnyConf>,
    pub(crate) vars: Variables,
    pub(crate) phases: [Vec<Arc<dyn PhaseHandler>>; Phase::COUNT],
    pub(crate) header_filters: Vec<Arc<dyn HeaderFilter>>,
    pub(crate) body_filters: Vec<Arc<dyn BodyFilter>>,
    pub(crate) satisfy: SatisfyFn,
    /// The sockets to listen on and the servers behind each.
    pub listens: Vec<ListenSite>,
    /// The configuration prefix (relative `root` paths resolve against it).
    pub prefix: PathBuf,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig").field("modules", &self.modules).field("listens", &self.listens.len()).finish()
    }
}

impl HttpConfig {
    /// The modules this configuration was built with.
    pub fn modules(&self) -> &Arc<Modules> {
        &self.modules
    }

    /// The variable registry.
    pub fn variables(&self) -> &Variables {
        &self.vars
    }

    /// Asks every module to reopen its files (USR1). The first error is
    /// returned after all modules were asked.
    pub fn reopen_files(&self) -> std::io::Result<()> {
        let mut first = Ok(());
        for (i, m) in self.modules.list().iter().enumerate() {
            if let Err(e) = m.reopen_files(self.main_confs[i].as_ref()) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

fn merge_module_locs(
    modules: &Modules,
    parent: &[AnyConf],
    child: &mut [AnyConf],
    origin: &Origin,
) -> Result<(), ConfError> {
    for (i, m) in modules.list.iter().enumerate() {
        m.merge_loc_conf(parent[i].as_ref() as &dyn Any, child[i].as_mut()).map_err(|e| ConfError::at(e, origin))?;
    }
    Ok(())
}

/// Merges and freezes a location and its nested locations.
fn freeze_location(
    modules: &Modules,
    parent: &[AnyConf],
    mut build: LocationBuild,
) -> Result<Arc<Location>, ConfError> {
    merge_module_locs(modules, parent, &mut build.confs, &build.origin)?;
    let core: &mut CoreLocConf = crate::module::downcast_mut(build.confs[0].as_mut());
    let children = std::mem::take(&mut core.locations);
    let handler = core.content_handler.clone();
    let mut nested = Vec::with_capacity(children.len());
    for mut child in children {
        if let LocMatch::Anonymous(parent) = &mut child.matcher {
            // An `if` block reads as its location (name, alias) and keeps
            // its content handler unless it sets its own, as in nginx.
            **parent = build.matcher.clone();
            let c: &mut CoreLocConf = crate::module::downcast_mut(child.confs[0].as_mut());
            if c.content_handler.is_none() {
                c.content_handler = handler.clone();
            }
        }
        if matches!(child.matcher, LocMatch::Named(_)) && !matches!(build.matcher, LocMatch::ServerLevel) {
            return Err(ConfError::at(
                format!("named location \"{}\" can be on the server level only", child.matcher.name()),
                &child.origin,
            ));
        }
        nested.push(freeze_location(modules, &build.confs, child)?);
    }
    Ok(Arc::new(Location::new(build.matcher, build.confs, LocationTree::new(nested), build.origin)))
}

fn freeze_server(
    modules: &Modules,
    http_srv: &[AnyConf],
    http_loc: &[AnyConf],
    mut sb: ServerBuild,
) -> Result<Server, ConfError> {
    for (i, m) in modules.list.iter().enumerate() {
        m.merge_srv_conf(http_srv[i].as_ref() as &dyn Any, sb.srv_confs[i].as_mut())
            .map_err(|e| ConfError::at(e, &sb.origin))?;
    }
    let root_build = LocationBuild {
        matcher: LocMatch::ServerLevel,
        confs: std::mem::take(&mut sb.loc_confs),
        origin: sb.origin.clone(),
    };
    let root = freeze_location(modules, http_loc, root_build)?;
    let mut named = HashMap::new();
    root.collect_named(&mut named);
    let core: &CoreSrvConf = crate::module::downcast(sb.srv_confs[0].as_ref());
    // `$server_name`: the first name; `.example.com` reads "example.com".
    let name = core.server_names.first().cloned().unwrap_or_default();
    let name = name.strip_prefix('.').map(str::to_string).unwrap_or(name);
    let (count, size) = core.large_client_header_buffers.unwrap_or((4, 8192));
    let head_limits = HeadLimits {
        header_buffer: core.client_header_buffer_size.unwrap_or(1024) as usize,
        large_buffer: size as usize,
        large_count: count as usize,
        underscores_in_headers: core.underscores_in_headers.unwrap_or(false),
        ignore_invalid_headers: core.ignore_invalid_headers.unwrap_or(true),
        merge_slashes: core.merge_slashes.unwrap_or(true),
        ..HeadLimits::default()
    };
    let header_timeout = core.client_header_timeout.unwrap_or(Duration::from_secs(60));
    Ok(Server { srv_confs: sb.srv_confs, root, named, name, origin: sb.origin, head_limits, header_timeout })
}

/// Reads an `http { }` block and builds the configuration.
pub fn load_http(modules: &Arc<Modules>, stmt: &Statement, prefix: &Path) -> Result<HttpConfig, ConfError> {
    let block = stmt.block.as_deref().unwrap_or(&[]);
    let mut vars = Variables::new();
    for m in &modules.list {
        m.preconfiguration(&mut PreConf { vars: &mut vars, block }).map_err(|e| stmt.error(e))?;
    }
    let mut cx = HttpConfCx {
        prefix: prefix.to_path_buf(),
        vars,
        modules: modules.clone(),
        main: modules.list.iter().map(|m| m.create_main_conf()).collect(),
        srv: Vec::new(),
        loc: Vec::new(),
        loc_kinds: Vec::new(),
    };
    cx.srv.push(cx.create_srv_confs());
    cx.loc.push(cx.create_loc_confs());
    cx.parse_block(block, Contexts::HTTP_MAIN)?;
    let http_loc = cx.loc.pop().expect("pushed above");
    let http_srv = cx.srv.pop().expect("pushed above");
    let mut main = std::mem::take(&mut cx.main);
    for (i, m) in modules.list.iter().enumerate() {
        m.init_main_conf(main[i].as_mut()).map_err(|e| stmt.error(e))?;
    }
    let core_main: &mut CoreMainConf = crate::module::downcast_mut(main[0].as_mut());
    let builds = std::mem::take(&mut core_main.servers);
    let mut servers = Vec::with_capacity(builds.len());
    for sb in builds {
        servers.push(Arc::new(freeze_server(modules, &http_srv, &http_loc, sb)?));
    }
    let mut phases: [Vec<Arc<dyn PhaseHandler>>; Phase::COUNT] = Default::default();
    let mut header_filters = Vec::new();
    let mut body_filters = Vec::new();
    let mut satisfy: SatisfyFn = satisfy_all;
    for m in modules.list.iter() {
        let mut pc = PostConf {
            phases: &mut phases,
            header_filters: &mut header_filters,
            body_filters: &mut body_filters,
            satisfy: &mut satisfy,
            main: &main,
            prefix,
            vars: &cx.vars,
        };
        m.postconfiguration(&mut pc).map_err(|e| stmt.error(e))?;
    }
    for s in &servers {
        s.root.set_chains(&header_filters, &body_filters, &phases);
    }
    let listens = listen::group(&servers).map_err(|e| stmt.error(e))?;
    Ok(HttpConfig {
        modules: modules.clone(),
        main_confs: main,
        vars: cx.vars,
        phases,
        header_filters,
        body_filters,
        satisfy,
        listens,
        prefix: prefix.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use sluice_core::conf::directive::{flag, Args, Contexts as C, Directive, Level};
    use sluice_core::Chain;

    use super::*;
    use crate::module::{
        downcast, downcast_mut, BodyFilter, ConfKey, FilterResult, HeaderFilter, HttpModule, ModuleIndex, NextBody,
        NextHeader,
    };
    use crate::request::Request;

    #[derive(Default)]
    struct ProbeLocConf {
        on: Option<bool>,
    }

    static PROBE: ConfKey<(), (), ProbeLocConf> = ConfKey::new();

    /// A module whose filters want only locations with `probe on`.
    struct ProbeModule;

    struct ProbeFilter;

    impl HeaderFilter for ProbeFilter {
        fn wanted_in(&self, loc: &Location) -> bool {
            loc.conf(&PROBE).on == Some(true)
        }

        fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
            next.call(r)
        }
    }

    impl BodyFilter for ProbeFilter {
        fn wanted_in(&self, loc: &Location) -> bool {
            loc.conf(&PROBE).on == Some(true)
        }

        fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
            next.call(r, chain)
        }
    }

    impl HttpModule for ProbeModule {
        fn name(&self) -> &'static str {
            "probe"
        }

        fn index(&self) -> &'static ModuleIndex {
            PROBE.index()
        }

        fn directives(&self) -> Vec<Directive<HttpConfCx>> {
            vec![Directive::new("probe", C::HTTP_ANY, Args::FLAG, Level::Loc, flag(|c: &mut ProbeLocConf| &mut c.on))]
        }

        fn create_loc_conf(&self) -> AnyConf {
            Box::new(ProbeLocConf::default())
        }

        fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
            let p: &ProbeLocConf = downcast(parent);
            let c: &mut ProbeLocConf = downcast_mut(child);
            c.on = Some(c.on.or(p.on).unwrap_or(false));
            Ok(())
        }

        fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
            cf.push_header_filter(Arc::new(ProbeFilter));
            cf.push_body_filter(Arc::new(ProbeFilter));
            // Two access handlers: one always wanted, one where probe is on.
            cf.add_phase_handler(Phase::Access, Arc::new(|_: &mut Request| crate::module::Flow::Declined));
            cf.add_phase_handler(
                Phase::Access,
                Arc::new(crate::module::Gated {
                    handler: |_: &mut Request| crate::module::Flow::Declined,
                    wanted_in: |loc| loc.conf(&PROBE).on == Some(true),
                }),
            );
            Ok(())
        }
    }

    /// Every location under `loc`, with the lengths of its two chains and
    /// whether it passes by the gated access handler.
    fn collect_chains(loc: &Location, out: &mut Vec<(String, usize, usize, bool)>) {
        let c = loc.chains().expect("chains set at load");
        let skips_gated = loc.skips(Phase::Access, 1);
        assert!(!loc.skips(Phase::Access, 0), "an ungated handler is always called");
        let mut others = c.phase_skip;
        others[Phase::Access as usize] &= !0b10;
        assert_eq!(others, [0; Phase::COUNT], "nothing else is passed by");
        out.push((loc.name().to_string(), c.header.len(), c.body.len(), skips_gated));
        for l in loc.nested.all() {
            collect_chains(l, out);
        }
    }

    #[test]
    fn each_location_chain_holds_only_the_filters_and_handlers_that_want_it() {
        let text = "http {
            probe on;
            server {
                listen 127.0.0.1:8080;
                location /inherits { }
                location /off {
                    probe off;
                    location /off/nested-on { probe on; }
                }
                location ~ ^/regex-off { probe off; }
                location @named-off { probe off; }
            }
        }";
        let conf = sluice_core::conf::parse_str(text, "t.conf".as_ref(), "/".as_ref()).unwrap();
        let modules = Modules::new(vec![Arc::new(ProbeModule)]).unwrap();
        let http = load_http(&modules, &conf.statements[0], "/".as_ref()).unwrap();
        // The registered chains: the probe above chunked and the header
        // writer / write filter.
        assert_eq!((http.header_filters.len(), http.body_filters.len()), (3, 3));
        let mut found = Vec::new();
        let site = &http.listens[0];
        collect_chains(&site.names_for(site.addr).default_server().root, &mut found);
        found.sort();
        let want = [
            ("", 3, 3, false),
            ("/inherits", 3, 3, false),
            ("/off", 2, 2, true),
            ("/off/nested-on", 3, 3, false),
            ("^/regex-off", 2, 2, true),
            ("@named-off", 2, 2, true),
        ];
        let mut want: Vec<(String, usize, usize, bool)> =
            want.iter().map(|(n, h, b, s)| (n.to_string(), *h, *b, *s)).collect();
        want.sort();
        assert_eq!(found, want);
    }
}
