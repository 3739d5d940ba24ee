//! The gunzip module: decompresses gzipped responses for clients that do
//! not accept gzip, as nginx's `ngx_http_gunzip_filter_module`.
//!
//! ```text
//! location /storage/ {
//!     gzip_static always;     # .gz files only on disk...
//!     gunzip on;              # ...served to every client
//!     gunzip_buffers 32 4k;   # the output held per pass
//! }
//! ```
//!
//! A header filter and a body filter, below `headers` and above `charset`
//! (nginx's `auto/modules` order), so well above `gzip`. A response with
//! `Content-Encoding: gzip`, for a request that does not accept gzip (see
//! [`crate::gzip::gzip_ok`]: `Accept-Encoding`, `gzip_http_version`,
//! `gzip_proxied`, `gzip_disable`), loses `Content-Encoding`,
//! `Content-Length` and `Accept-Ranges`, its ETag becomes weak, and its
//! body is inflated as it streams. `Vary: Accept-Encoding` is added with
//! `gzip_vary on`.
//!
//! The body goes through [`crate::zpump`] (bounded passes of about
//! `gunzip_buffers` of output — inflate output may be far larger than its
//! input, so the codec stops mid-piece at the bound —, `flush`, Again,
//! `last_buf`). The gzip framing is read here: header fields (FEXTRA,
//! FNAME, FCOMMENT, FHCRC), then raw inflate, then the CRC-32 and length
//! trailer, which are checked; concatenated members are decoded one after
//! another. Damaged data ends the response with an error (the connection
//! is closed, as nginx does). Per-request state: [`GunzipCtx`].

use std::any::Any;
use std::sync::Arc;

use flate2::{Crc, Decompress, FlushDecompress, Status};
use sluice_core::conf::directive::{custom, flag, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextBody,
    NextHeader, PostConf, Request,
};

use crate::zpump::{Codec, OutBuf, Pump};

/// The largest gzip header accepted (its optional name and comment fields
/// have no limit of their own).
const MAX_HEADER: usize = 64 * 1024;

/// Location conf.
#[derive(Debug, Default)]
pub struct GunzipLocConf {
    enable: Option<bool>,
    buffers: Option<(u64, u64)>,
}

/// Where an [`Inflater`] is in the gzip stream.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// Reading a member's header (bytes gathered so far are in `held`).
    Header,
    /// Inflating a member's data.
    Data,
    /// Reading a member's 8-byte trailer (into `held`).
    Trailer,
}

/// The inflate side: gzip framing around flate2's raw inflate.
pub struct Inflater {
    z: Decompress,
    crc: Crc,
    stage: Stage,
    held: Vec<u8>,
    members: u32,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").field("stage", &self.stage).field("members", &self.members).finish()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

/// The length of a complete gzip header at the start of `h`; `Ok(None)`
/// when more bytes are needed.
pub fn header_len(h: &[u8]) -> Result<Option<usize>, String> {
    if h.len() < 10 {
        return Ok(None);
    }
    if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
        return Err("gunzip: not a gzip stream".into());
    }
    let flags = h[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(x) = h.get(at..at + 2) else { return Ok(None) };
        at += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            match h.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((at <= h.len()).then_some(at))
}

impl Inflater {
    /// A decoder at the start of a gzip stream.
    pub fn new() -> Inflater {
        Inflater { z: Decompress::new(false), crc: Crc::new(), stage: Stage::Header, held: Vec::new(), members: 0 }
    }

    /// Gathers header bytes; returns how many of `input` it used.
    fn header(&mut self, input: &[u8]) -> Result<usize, String> {
        let before = self.held.len();
        let take = input.len().min(MAX_HEADER + 1 - before);
        self.held.extend_from_slice(&input[..take]);
        match header_len(&self.held)? {
            Some(len) => {
                self.held.clear();
                self.stage = Stage::Data;
                Ok(len - before)
            }
            None if self.held.len() > MAX_HEADER => Err("gunzip: gzip header too long".into()),
            None => Ok(take),
        }
    }

    /// Inflates into `out`; returns how much input it used.
    fn data(&mut self, input: &[u8], out: &mut OutBuf) -> Result<usize, String> {
        let room = out.room();
        let start = room.len();
        let before = self.z.total_in();
        let status =
            self.z.decompress_vec(input, room, FlushDecompress::None).map_err(|e| format!("inflate() failed: {e}"))?;
        self.crc.update(&room[start..]);
        if status == Status::StreamEnd {
            self.stage = Stage::Trailer;
        }
        Ok((self.z.total_in() - before) as usize)
    }

    /// Gathers and checks the trailer; returns how much input it used.
    fn trailer(&mut self, input: &[u8]) -> Result<usize, String> {
        let take = input.len().min(8 - self.held.len());
        self.held.extend_from_slice(&input[..take]);
        if self.held.len() == 8 {
            let crc = u32::from_le_bytes([self.held[0], self.held[1], self.held[2], self.held[3]]);
            let len = u32::from_le_bytes([self.held[4], self.held[5], self.held[6], self.held[7]]);
            if crc != self.crc.sum() || len != self.crc.amount() {
                return Err("inflate() failed: incorrect data check".into());
            }
            self.members += 1;
            self.held.clear();
            self.crc.reset();
            self.z.reset(false);
            self.stage = Stage::Header;
        }
        Ok(take)
    }
}

impl Codec for Inflater {
    fn write(&mut self, input: &[u8], out: &mut OutBuf, limit: usize) -> Result<usize, String> {
        let mut pos = 0;
        while pos < input.len() && out.pending() < limit {
            pos += match self.stage {
                Stage::Header => self.header(&input[pos..])?,
                Stage::Data => self.data(&input[pos..], out)?,
                Stage::Trailer => self.trailer(&input[pos..])?,
            };
        }
        Ok(pos)
    }

    fn flush(&mut self, _out: &mut OutBuf) -> Result<(), String> {
        // Output is drained after every piece of input: nothing is held.
        Ok(())
    }

    fn finish(&mut self, _out: &mut OutBuf) -> Result<(), String> {
        if self.stage == Stage::Header && self.held.is_empty() && self.members > 0 {
            Ok(())
        } else {
            Err("gunzip: unexpected end of gzip data".into())
        }
    }
}

/// The per-request state of a response being inflated.
#[derive(Debug)]
pub struct GunzipCtx {
    /// The stream and the input not yet inflated.
    pub pump: Pump<Inflater>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), GunzipLocConf> = ConfKey::new();

/// The gunzip module.
#[derive(Debug)]
pub struct GunzipModule;

/// The header filter.
struct GunzipHeaderFilter;

impl HeaderFilter for GunzipHeaderFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).enable.unwrap_or(false)
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let conf = r.loc_conf(&KEY);
        if !conf.enable.unwrap_or(false) {
            return next.call(r);
        }
        let gzipped = r.headers_out.get("Content-Encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"gzip"));
        if !gzipped {
            return next.call(r);
        }
        let (number, size) = conf.buffers.unwrap_or((32, 4096));
        if r.loc_conf(&crate::gzip::KEY).vary() {
            crate::gzip::add_vary(r);
        }
        if crate::gzip::gzip_ok(r) {
            return next.call(r);
        }
        r.set_ctx(&KEY, GunzipCtx { pump: Pump::new(Inflater::new(), number as usize, size as usize) });
        r.headers_out.remove("Content-Encoding");
        crate::gzip::clear_for_transform(r);
        next.call(r)
    }
}

/// The body filter.
struct GunzipBodyFilter;

impl BodyFilter for GunzipBodyFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).enable.unwrap_or(false)
    }

    fn body_filter(&self, r: &mut Request, chain: sluice_core::Chain, next: NextBody<'_>) -> FilterResult {
        if r.header_only {
            return next.call(r, chain);
        }
        // Taken out for the call below, which needs the request whole.
        let Some(mut ctx) = r.take_ctx::<_, _, _, GunzipCtx>(&KEY) else {
            return next.call(r, chain);
        };
        let result = ctx.pump.run(r, chain, next);
        r.set_ctx(&KEY, ctx);
        result
    }
}

fn set_buffers(_: &mut HttpConfCx, c: &mut GunzipLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.buffers.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    c.buffers = Some(crate::gzip::parse_bufs(stmt)?);
    Ok(())
}

impl HttpModule for GunzipModule {
    fn name(&self) -> &'static str {
        "gunzip"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![
            Directive::new("gunzip", C::HTTP_ANY, Args::FLAG, Level::Loc, flag(|c: &mut GunzipLocConf| &mut c.enable)),
            Directive::new("gunzip_buffers", C::HTTP_ANY, Args::TAKE2, Level::Loc, custom(set_buffers)),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(GunzipLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &GunzipLocConf = downcast(parent);
        let c: &mut GunzipLocConf = downcast_mut(child);
        c.enable = c.enable.or(p.enable);
        c.buffers = c.buffers.or(p.buffers);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(GunzipHeaderFilter));
        cf.push_body_filter(Arc::new(GunzipBodyFilter));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{Buf, Chain};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Pushes `chain` and runs passes until the pump is idle or done.
    fn run(pump: &mut Pump<Inflater>, chain: Chain) -> Result<Vec<u8>, String> {
        pump.push_input(chain);
        let mut out = Vec::new();
        loop {
            let c = pump.pass()?;
            let empty = c.is_empty();
            for b in c.bufs() {
                out.extend_from_slice(b.as_bytes().unwrap());
            }
            if empty || pump.done || pump.idle() {
                return Ok(out);
            }
        }
    }

    fn text() -> Vec<u8> {
        (0..5_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect()
    }

    #[test]
    fn every_split_inflates_to_the_original() {
        let plain = text();
        let z = gzip(&plain);
        for at in (0..z.len()).step_by(z.len() / 50).chain([1, 9, 10, 11, z.len() - 8, z.len() - 1]) {
            let mut pump = Pump::new(Inflater::new(), 4, 4096);
            let mut got = run(&mut pump, Chain::one(Buf::mem(z[..at].to_vec()))).unwrap();
            got.extend(run(&mut pump, Chain::one(Buf::mem(z[at..].to_vec()).with_last())).unwrap());
            assert_eq!(got, plain, "split at {at}");
        }
    }

    #[test]
    fn output_per_pass_is_bounded_even_for_a_bomb() {
        let zeros = vec![0u8; 2 << 20];
        let z = gzip(&zeros);
        assert!(z.len() < 16 * 1024);
        let mut pump = Pump::new(Inflater::new(), 2, 4096);
        pump.push_input(Chain::one(Buf::mem(z).with_last()));
        let mut total = 0;
        while !pump.done {
            let c = pump.pass().unwrap();
            assert!(c.len() <= 2 * 4096 + 4096, "{}", c.len());
            total += c.len();
        }
        assert_eq!(total, 2 << 20);
    }

    #[test]
    fn header_fields_and_members() {
        // FNAME and FCOMMENT set, then a second member.
        let mut z = vec![0x1f, 0x8b, 8, 0x18, 0, 0, 0, 0, 0, 3];
        z.extend_from_slice(b"name.txt\0a comment\0");
        z.extend_from_slice(&gzip(b"first ")[10..]);
        z.extend_from_slice(&gzip(b"second"));
        assert_eq!(header_len(&z[..12]), Ok(None));
        assert_eq!(header_len(&z), Ok(Some(29)));
        let mut pump = Pump::new(Inflater::new(), 4, 4096);
        let mut chain = Chain::new();
        for &c in &z {
            chain.push(Buf::mem(vec![c]));
        }
        chain.push(Buf::last());
        assert_eq!(run(&mut pump, chain).unwrap(), b"first second");
    }

    #[test]
    fn damaged_and_truncated_streams_fail() {
        let mut z = gzip(b"hello, world");
        let n = z.len();
        z[n - 8] ^= 1;
        let mut pump = Pump::new(Inflater::new(), 4, 4096);
        assert!(run(&mut pump, Chain::one(Buf::mem(z.clone()).with_last())).unwrap_err().contains("data check"));
        let mut pump = Pump::new(Inflater::new(), 4, 4096);
        let cut = z[..n - 3].to_vec();
        assert!(run(&mut pump, Chain::one(Buf::mem(cut).with_last())).unwrap_err().contains("unexpected end"));
        let mut pump = Pump::new(Inflater::new(), 4, 4096);
        assert!(run(&mut pump, Chain::one(Buf::mem(&b"plain text, not gzip"[..]).with_last())).is_err());
    }
}
