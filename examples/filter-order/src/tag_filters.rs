//! The `tag_filters` module: three body filters that show the filter order.
//!
//! ```text
//! location /demo {
//!     tag_filters on;      # default off; inherited by nested locations
//!     stream_demo 3 16;
//! }
//! ```
//!
//! One module pushes three filters, A then B then C, in its
//! postconfiguration. Registration is LIFO (the last pushed runs first), so
//! they run C, B, A, and then sluice's own filters below them (chunked,
//! write). One module rather than three keeps the order in one place — the
//! three `push_body_filter` calls below — and shares one directive and one
//! conf; with three modules the order would instead follow their places in
//! the module list (a module listed later runs its filters earlier).
//!
//! Each filter prepends its marker to every chain that carries payload. C
//! runs first, so its marker lands next to the payload; A runs last, so its
//! marker is outermost. A 16-byte chain therefore leaves as
//! `[A][B][C]` + payload, one 25-byte chunk: read the markers from the
//! payload outwards (right to left) to get the order they ran in.
//!
//! Pass-through guard: with `tag_filters off`, or a chain without payload
//! (a flag-only `last_buf` or `flush`), a filter hands the chain on
//! untouched. No per-request state; the filters never copy payload (a
//! marker is a static buf pushed in front of it).

use std::any::Any;
use std::sync::Arc;

use sluice_core::conf::directive::{flag, Args, Contexts as C, Directive, Level};
use sluice_core::{Buf, Chain};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterResult, HttpConfCx, HttpModule, ModuleIndex, NextBody, PostConf, Request,
};

/// Location conf: `tag_filters on|off`.
#[derive(Debug, Default)]
pub struct TagFiltersLocConf {
    on: Option<bool>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), TagFiltersLocConf> = ConfKey::new();

/// The `tag_filters` module.
#[derive(Debug)]
pub struct TagFiltersModule;

/// The markers, in registration order (A is pushed first, so runs last).
pub const MARKERS: [&[u8]; 3] = [b"[A]", b"[B]", b"[C]"];

/// One of the three filters: prepends its marker.
#[derive(Debug)]
struct TagFilter {
    marker: &'static [u8],
}

/// `chain` with `marker` in front of its payload; a chain without payload
/// comes back as it was, so flag-only bufs carry no marker.
pub fn tag(mut chain: Chain, marker: &'static [u8]) -> Chain {
    // Not `!chain.is_empty()`: that is true for a flag-only chain too.
    if chain.has_payload() {
        chain.push_front(Buf::from_static(marker));
    }
    chain
}

impl BodyFilter for TagFilter {
    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        if !r.loc_conf(&KEY).on.unwrap_or(false) {
            return next.call(r, chain);
        }
        // Again from below is passed up as is: the chain was accepted and
        // the producer waits for the socket to drain.
        next.call(r, tag(chain, self.marker))
    }
}

impl HttpModule for TagFiltersModule {
    fn name(&self) -> &'static str {
        "tag_filters"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "tag_filters",
            C::HTTP_ANY,
            Args::FLAG,
            Level::Loc,
            flag(|c: &mut TagFiltersLocConf| &mut c.on),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(TagFiltersLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &TagFiltersLocConf = downcast(parent);
        let c: &mut TagFiltersLocConf = downcast_mut(child);
        c.on = c.on.or(p.on);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        // A, then B, then C: C ends up on top and runs first.
        for marker in MARKERS {
            cf.push_body_filter(Arc::new(TagFilter { marker }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_bytes(chain: &Chain) -> Vec<u8> {
        chain.to_vec().expect("memory bufs only")
    }

    #[test]
    fn tag_prepends_the_marker_without_copying_the_payload() {
        let payload = bytes::Bytes::from_static(b"hello");
        let chain = tag(Chain::one(Buf::mem(payload.clone()).with_flush()), b"[A]");
        assert_eq!(chain_bytes(&chain), b"[A]hello");
        assert_eq!(chain.buf_count(), 2);
        assert!(chain.wants_flush(), "flags stay on the payload buf");
        let kept = chain.bufs()[1].as_bytes().expect("memory");
        assert_eq!(kept.as_ptr(), payload.as_ptr(), "the payload buf is passed on, not copied");
    }

    #[test]
    fn markers_applied_c_then_b_then_a_read_a_b_c() {
        // What the three filters do to one chain, in the order they run.
        let mut chain = Chain::one(Buf::mem(&b"xyz"[..]).with_last());
        for marker in MARKERS.iter().rev() {
            chain = tag(chain, marker);
        }
        assert_eq!(chain_bytes(&chain), b"[A][B][C]xyz");
        assert!(chain.is_last());
    }

    #[test]
    fn flag_only_chains_pass_untouched() {
        let chain = tag(Chain::one(Buf::last()), b"[A]");
        assert_eq!(chain.buf_count(), 1);
        assert!(chain.is_last());
        assert_eq!(chain.len(), 0);
    }

    #[test]
    fn merge_inherits_then_overrides() {
        let m = TagFiltersModule;
        let parent = TagFiltersLocConf { on: Some(true) };
        let mut child = TagFiltersLocConf::default();
        m.merge_loc_conf(&parent, &mut child).expect("merge");
        assert_eq!(child.on, Some(true));
        let mut off = TagFiltersLocConf { on: Some(false) };
        m.merge_loc_conf(&parent, &mut off).expect("merge");
        assert_eq!(off.on, Some(false));
    }
}
