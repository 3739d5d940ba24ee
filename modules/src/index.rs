//! The index module: `index file ...;` (default `index.html`).
//!
//! ```text
//! location / { index index.html index.htm /fallback.html; }
//! ```
//!
//! A content-phase handler that runs before `static`: for a URI ending in
//! `/`, the first index file that exists is served through an internal
//! redirect to URI + name (an absolute name, starting with `/`, redirects to
//! itself and ends the list). Names may contain variables. When no index
//! file exists the handler declines (the request then ends in 403
//! "directory index ... is forbidden" unless a later handler serves it);
//! when the directory itself does not exist, 404.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_core::conf::directive::{custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::parse::Method;
use sluice_http::phase::internal_redirect;
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// Location conf.
#[derive(Default)]
pub struct IndexLocConf {
    names: Option<Vec<ComplexValue>>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), IndexLocConf> = ConfKey::new();

/// The index module.
#[derive(Debug)]
pub struct IndexModule;

fn set_index(cx: &mut HttpConfCx, c: &mut IndexLocConf, stmt: &Statement) -> Result<(), SetError> {
    let names = c.names.get_or_insert_with(Vec::new);
    for a in &stmt.args {
        if a.as_str().is_empty() {
            return Err(format!("index \"{}\" in \"index\" directive is invalid", a.as_str()).into());
        }
        names.push(cx.compile(a.as_str())?);
    }
    Ok(())
}

fn handle(r: &mut Request) -> Flow {
    if r.uri.last() != Some(&b'/') || !matches!(r.method(), Method::Get | Method::Head | Method::Post) {
        return Flow::Declined;
    }
    let names = r.loc_conf(&KEY).names.clone().unwrap_or_else(|| vec![ComplexValue::literal("index.html")]);
    let mut dir_checked = false;
    for name in &names {
        let name = name.eval(r);
        let target: Bytes = if name.first() == Some(&b'/') {
            name.clone()
        } else {
            let mut t = BytesMut::from(&r.uri[..]);
            t.extend_from_slice(&name);
            t.freeze()
        };
        let path = r.map_uri_to_path(&target);
        match std::fs::metadata(&path) {
            Ok(_) => {
                let args = r.args.clone();
                return internal_redirect(r, target, args);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if name.first() == Some(&b'/') {
                    // An absolute name is the last resort: redirect even if
                    // it does not exist, as nginx does.
                    let args = r.args.clone();
                    return internal_redirect(r, target, args);
                }
                if !dir_checked {
                    dir_checked = true;
                    let dir = r.map_uri_to_path(&r.uri);
                    if let Err(e) = std::fs::metadata(&dir) {
                        return Flow::Status(crate::static_file::open_error_status(r, &dir, &e));
                    }
                }
            }
            Err(e) => return Flow::Status(crate::static_file::open_error_status(r, &path, &e)),
        }
    }
    Flow::Declined
}

impl HttpModule for IndexModule {
    fn name(&self) -> &'static str {
        "index"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new("index", C::HTTP_ANY, Args::MORE1, Level::Loc, custom(set_index))]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(IndexLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &IndexLocConf = downcast(parent);
        let c: &mut IndexLocConf = downcast_mut(child);
        if c.names.is_none() {
            c.names.clone_from(&p.names);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::Content, Arc::new(handle));
        Ok(())
    }
}
