//! `panic_demo` — a content handler with a bug: it panics. It shows what
//! a panic in a module costs: the worker that ran it, with its
//! connections; sluice logs the panic at `alert` and starts a new worker
//! in its place, as nginx's master replaces a crashed worker process. The
//! other workers, and their connections, go on.
//!
//! ```text
//! location /boom { panic_demo; }
//! ```

use std::sync::Arc;

use sluice_core::conf::directive::{Args, Contexts as C, Directive, Level};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, PhaseHandler, Request};

/// The module's key (a marker conf: the handler is the location's).
pub static KEY: ConfKey<(), (), PanicDemoLocConf> = ConfKey::new();

/// Location conf: whether `panic_demo` was given here (for duplicates).
#[derive(Debug, Default)]
pub struct PanicDemoLocConf {
    set: bool,
}

/// The module.
#[derive(Debug)]
pub struct PanicDemoModule;

struct PanicDemoHandler;

impl PhaseHandler for PanicDemoHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        panic!("panic_demo was asked for {}", String::from_utf8_lossy(&r.uri));
    }
}

impl HttpModule for PanicDemoModule {
    fn name(&self) -> &'static str {
        "panic_demo"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "panic_demo",
            C::HTTP_LOC,
            Args::NOARGS,
            Level::Loc,
            Box::new(|cx: &mut HttpConfCx, conf, stmt| {
                let c: &mut PanicDemoLocConf = downcast_mut(conf);
                if c.set {
                    return Err(sluice_core::conf::directive::duplicate(stmt).into());
                }
                c.set = true;
                cx.set_content_handler(Arc::new(PanicDemoHandler))
            }),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(PanicDemoLocConf::default())
    }

    fn merge_loc_conf(&self, _parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        // The handler is the location's own, not inherited.
        let _: &PanicDemoLocConf = downcast(child);
        Ok(())
    }
}
