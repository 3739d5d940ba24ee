//! The rewrite module, as far as `return` goes:
//!
//! ```text
//! location = /health { return 200 "ok\n"; }
//! location /old/     { return 301 /new/; }
//! location /gone     { return 410; }
//! ```
//!
//! `return code [text]` answers with the text as the body (variables
//! allowed); for 301, 302, 303, 307 and 308 the text is the `Location`;
//! `return URL` is a 302. It runs in the server_rewrite and rewrite phases,
//! so a `return` at server level answers before any location is chosen,
//! as in nginx. (`rewrite`, `if`, `set` and `break` come with the static
//! and request-control modules.)

use std::sync::Arc;

use sluice_core::conf::directive::{custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// `return`'s conf (per location; server-level in the server's conf).
#[derive(Default)]
pub struct RewriteLocConf {
    ret: Option<Arc<Return>>,
}

struct Return {
    code: u16,
    text: Option<ComplexValue>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), RewriteLocConf> = ConfKey::new();

/// The rewrite module.
#[derive(Debug)]
pub struct RewriteModule;

fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

fn set_return(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.ret.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    let first = stmt.arg(0);
    let ret = match first.parse::<u16>() {
        Ok(code) if code <= 999 => Return {
            code,
            text: match stmt.args.get(1) {
                Some(t) => Some(cx.compile(t.as_str())?),
                None => None,
            },
        },
        _ if stmt.args.len() == 1
            && (first.starts_with("http://") || first.starts_with("https://") || first.starts_with('$')) =>
        {
            Return { code: 302, text: Some(cx.compile(first)?) }
        }
        _ => return Err(format!("invalid return code \"{first}\"").into()),
    };
    c.ret = Some(Arc::new(ret));
    Ok(())
}

fn handle(r: &mut Request) -> Flow {
    let Some(ret) = r.loc_conf(&KEY).ret.clone() else {
        return Flow::Declined;
    };
    let text = ret.text.as_ref().map(|t| t.eval(r));
    if is_redirect(ret.code) {
        if let Some(loc) = text {
            r.headers_out.location = Some(loc);
        }
        return Flow::Status(ret.code);
    }
    match text {
        None => Flow::Status(ret.code),
        Some(body) => {
            if let Err(status) = r.discard_body() {
                return Flow::Status(status);
            }
            let ct = r.default_type();
            let _ = r.send_response(ret.code, Some(ct), body);
            Flow::Done
        }
    }
}

impl HttpModule for RewriteModule {
    fn name(&self) -> &'static str {
        "rewrite"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "return",
            C::HTTP_SRV | C::HTTP_LOC | C::HTTP_SIF | C::HTTP_LIF,
            Args::TAKE12,
            Level::Loc,
            custom(set_return),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(RewriteLocConf::default())
    }

    // `return` is not inherited: a location without its own `return` does
    // not repeat the server's (which already answered at server_rewrite).
    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::ServerRewrite, Arc::new(handle));
        cf.add_phase_handler(Phase::Rewrite, Arc::new(handle));
        Ok(())
    }
}
