//! An out-of-tree sluice module that chooses, per request, which upstream
//! the proxy talks to — the job of the Apache seed's `mod_proxy_mapper`.
//!
//! * [`picker`] — `pick_backend_by_header X-Tenant;` plus
//!   `backend_for acme tenant_a;` lines and `backend_default shared;`: a
//!   rewrite-phase handler reads the request's field, looks its value up
//!   and stores the backend's name in the variable `$picked_backend`, which
//!   `proxy_pass http://$picked_backend;` evaluates per request.
//!
//! [`server_modules()`] is sluice's bundle plus this crate's module; the
//! `sluice-backend-picker` binary runs with it.
#![forbid(unsafe_code)]

pub mod picker;

use std::sync::Arc;

use sluice_http::HttpModule;

/// This crate's modules, in the order a server binary appends them.
pub fn modules() -> Vec<Arc<dyn HttpModule>> {
    vec![Arc::new(picker::BackendPickerModule)]
}

/// sluice's module bundle followed by this crate's: the list
/// `sluice-backend-picker` runs with. Listed after `rewrite`, the picker's
/// rewrite-phase handler runs after the location's `set`/`rewrite` steps.
pub fn server_modules() -> Vec<Arc<dyn HttpModule>> {
    let mut list = sluice::modules();
    list.extend(modules());
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_come_last_and_no_name_is_taken_twice() {
        let names: Vec<&str> = server_modules().iter().map(|m| m.name()).collect();
        let own = sluice::modules().len();
        assert_eq!(&names[own..], ["backend_picker"]);
        assert!(sluice_http::Modules::new(server_modules()).is_ok());
    }
}
