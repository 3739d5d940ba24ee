//! The `backend_picker` module: chooses the upstream of each request from a
//! request header field, in a rewrite-phase handler, and hands the choice
//! to `proxy_pass` through a variable.
//!
//! ```text
//! upstream tenant_a { server 10.0.0.1:8080; }
//! upstream tenant_b { server 10.0.0.2:8080; }
//! upstream shared   { server 10.0.0.3:8080; }
//! location / {
//!     pick_backend_by_header X-Tenant;
//!     backend_for acme   tenant_a;
//!     backend_for globex tenant_b;
//!     backend_default    shared;
//!     proxy_pass http://$picked_backend;
//! }
//! ```
//!
//! Directives (http, server, location; a level that sets one does not
//! inherit the outer level's value of that one):
//!
//! * `pick_backend_by_header field;` — turns the picker on, reading `field`;
//! * `backend_for value backend;` — requests whose field equals `value`
//!   (compared without regard to ASCII case) go to `backend`; repeatable;
//! * `backend_default backend;` — requests without the field, or with a
//!   value no `backend_for` names, go to `backend`. Without it, such a
//!   request is answered 404 and the error log says why.
//!
//! A backend is what `proxy_pass` accepts as the host of a URL with
//! variables: the name of an `upstream` block, or an IP address with an
//! optional port (`127.0.0.1:8081`). sluice has no resolver, so any other
//! host name gets 502 from the proxy.
//!
//! How the pieces meet:
//!
//! 1. preconfiguration *declares* `$picked_backend`, as `set $x` does: the
//!    variable gets a per-request slot, and `proxy_pass http://$picked_backend`
//!    compiles wherever it is written;
//! 2. postconfiguration looks the slot's index up once and gives it to the
//!    [`PickHandler`] it adds to the rewrite phase — no name look-up at
//!    request time;
//! 3. per request, the handler stores the chosen name with
//!    `Request::set_variable` and declines, so the rest of the phase runs;
//!    the proxy's content handler evaluates the URL later and finds the
//!    group by that name.
//!
//! Per-request state: only the variable's value. Not done: choosing by
//! anything other than one header field (a `map` on `$http_x_tenant` does
//! the same job in configuration alone; this module shows the code path).

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PhaseHandler, PostConf, PreConf, Request,
};

/// The variable the handler sets, without its `$`.
pub const VARIABLE: &str = "picked_backend";

/// The picker's location conf; every field unset until merged.
#[derive(Debug, Default)]
pub struct PickerLocConf {
    /// `pick_backend_by_header`: the field to read.
    header: Option<String>,
    /// `backend_for`: (value, backend), in the order written.
    table: Option<Arc<Vec<(Bytes, Bytes)>>>,
    /// `backend_default`.
    default: Option<Bytes>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), PickerLocConf> = ConfKey::new();

/// The `backend_picker` module.
#[derive(Debug)]
pub struct BackendPickerModule;

fn directives() -> Vec<Directive<HttpConfCx>> {
    let any = C::HTTP_ANY;
    vec![
        Directive::new("pick_backend_by_header", any, Args::TAKE1, Level::Loc, custom(set_header)),
        Directive::new("backend_for", any, Args::TAKE2, Level::Loc, custom(set_backend_for)),
        Directive::new("backend_default", any, Args::TAKE1, Level::Loc, custom(set_default)),
    ]
}

impl HttpModule for BackendPickerModule {
    fn name(&self) -> &'static str {
        "backend_picker"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        directives()
    }

    // Before any directive is read, so that `$picked_backend` compiles in
    // `proxy_pass` (or `add_header`, `log_format`) wherever it appears.
    fn preconfiguration(&self, cf: &mut PreConf) -> Result<(), String> {
        cf.vars.declare(VARIABLE).map(|_| ())
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(PickerLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &PickerLocConf = downcast(parent);
        let c: &mut PickerLocConf = downcast_mut(child);
        if c.header.is_none() {
            c.header.clone_from(&p.header);
        }
        if c.table.is_none() {
            c.table.clone_from(&p.table);
        }
        if c.default.is_none() {
            c.default.clone_from(&p.default);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        let var = cf
            .vars
            .resolve(VARIABLE)
            .and_then(|v| v.declared_index())
            .ok_or_else(|| format!("\"${VARIABLE}\" is not a declared variable"))?;
        cf.add_phase_handler(Phase::Rewrite, Arc::new(PickHandler { var }));
        Ok(())
    }
}

fn set_header(_: &mut HttpConfCx, c: &mut PickerLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.header.is_some() {
        return Err(duplicate(stmt).into());
    }
    c.header = Some(stmt.arg(0).to_string());
    Ok(())
}

fn set_backend_for(_: &mut HttpConfCx, c: &mut PickerLocConf, stmt: &Statement) -> Result<(), SetError> {
    let (value, backend) = (stmt.arg(0), stmt.arg(1));
    if backend.is_empty() {
        return Err(format!("empty backend in \"{}\" directive", stmt.name).into());
    }
    let table = Arc::make_mut(c.table.get_or_insert_with(Default::default));
    if table.iter().any(|(v, _)| v.eq_ignore_ascii_case(value.as_bytes())) {
        return Err(format!("duplicate value \"{value}\" in \"{}\" directive", stmt.name).into());
    }
    table.push((Bytes::from(value.to_string()), Bytes::from(backend.to_string())));
    Ok(())
}

fn set_default(_: &mut HttpConfCx, c: &mut PickerLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.default.is_some() {
        return Err(duplicate(stmt).into());
    }
    c.default = Some(Bytes::from(stmt.arg(0).to_string()));
    Ok(())
}

impl PickerLocConf {
    /// The backend for a request whose field is `value` (`None`: absent).
    pub fn pick(&self, value: Option<&[u8]>) -> Option<Bytes> {
        let table = self.table.as_deref().map(Vec::as_slice).unwrap_or(&[]);
        value
            .map(<[u8]>::trim_ascii)
            .and_then(|v| table.iter().find(|(k, _)| k.eq_ignore_ascii_case(v)))
            .map(|(_, backend)| backend.clone())
            .or_else(|| self.default.clone())
    }
}

/// The rewrite-phase handler: sets `$picked_backend` for the request.
#[derive(Debug)]
pub struct PickHandler {
    /// The declared variable's slot.
    var: usize,
}

impl PhaseHandler for PickHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        let conf = r.loc_conf(&KEY);
        let Some(field) = conf.header.as_deref() else { return Flow::Declined };
        let value = r.header(field).cloned();
        match conf.pick(value.as_deref()) {
            Some(backend) => {
                r.set_variable(self.var, backend);
                // Declined, not Ok: later handlers of the phase still run.
                Flow::Declined
            }
            None => {
                let shown = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                sluice_http::req_log!(
                    r,
                    LogLevel::Error,
                    "no backend for {field}: {}, and no backend_default",
                    shown.as_deref().unwrap_or("(absent)")
                );
                Flow::Status(404)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(table: &[(&str, &str)], default: Option<&str>) -> PickerLocConf {
        PickerLocConf {
            header: Some("X-Tenant".into()),
            table: Some(Arc::new(
                table.iter().map(|(v, b)| (Bytes::from(v.to_string()), Bytes::from(b.to_string()))).collect(),
            )),
            default: default.map(|d| Bytes::from(d.to_string())),
        }
    }

    #[test]
    fn picks_by_value_then_default() {
        let c = conf(&[("acme", "tenant_a"), ("globex", "tenant_b")], Some("shared"));
        assert_eq!(c.pick(Some(b"acme")).as_deref(), Some(&b"tenant_a"[..]));
        assert_eq!(c.pick(Some(b" GLOBEX ")).as_deref(), Some(&b"tenant_b"[..]));
        assert_eq!(c.pick(Some(b"initech")).as_deref(), Some(&b"shared"[..]));
        assert_eq!(c.pick(None).as_deref(), Some(&b"shared"[..]));
    }

    #[test]
    fn without_a_default_an_unknown_value_has_no_backend() {
        let c = conf(&[("acme", "tenant_a")], None);
        assert_eq!(c.pick(Some(b"initech")), None);
        assert_eq!(c.pick(None), None);
    }
}
