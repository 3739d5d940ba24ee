//! URI normalisation (nginx's `r->uri`, `r->args`, `r->exten`) and Host
//! validation.
//!
//! Normalisation follows nginx's complex-URI pass: one percent-decode,
//! `/./` dropped, `/../` resolved against what was already written (above
//! the root is a 400), `//` merged when `merge_slashes` is on, a `#` ends
//! the path, the first `?` starts the (undecoded) arguments. A decoded `%`,
//! `#` or `?` stays a literal byte of the path; any other decoded byte
//! (`%2F`, `%2E`) counts exactly as if it had been sent raw, so `%2e%2e`
//! climbs and `%2F` separates. `\` is an ordinary byte (Unix nginx).

use std::ops::Range;

use bytes::Bytes;

use super::HeadError;

const INVALID_REQUEST: HeadError = HeadError::BadRequest("client sent invalid request");

/// Where the normaliser stands, as in nginx's complex-URI state machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PathState {
    /// Inside a segment.
    Usual,
    /// Just wrote a `/`.
    Slash,
    /// Wrote `/.`.
    Dot,
    /// Wrote `/..`.
    DotDot,
}

/// What the byte just fed asks the caller to do.
enum Step {
    Next,
    /// A `?`: the arguments start at the following raw byte.
    Args,
    /// A `#`: the path ends here.
    Fragment,
}

/// The result of normalising a raw request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalized {
    /// The decoded, resolved path; `None` when it is the input's first
    /// `plain_len` bytes unchanged, as it is for most paths (no `%`, no
    /// `/.`, no `//` to merge): then nothing was copied. (On the heap when
    /// made: kept inline, it made every request's parse move a 150-byte
    /// value around for the rare path that needs it.)
    pub(crate) uri: Option<Vec<u8>>,
    /// With `uri` `None`: the length of the path in the input.
    pub(crate) plain_len: usize,
    /// Start of the extension inside `uri` (after the last dot of the last
    /// segment), when there is one.
    pub(crate) exten_start: Option<usize>,
    /// The raw arguments: a range of the input, after `?`, up to `#`.
    pub(crate) args: Option<Range<usize>>,
}

struct Normalizer {
    out: Vec<u8>,
    exten_start: Option<usize>,
    state: PathState,
    merge_slashes: bool,
}

impl Normalizer {
    fn feed(&mut self, ch: u8) -> Result<Step, HeadError> {
        use PathState::*;
        match (self.state, ch) {
            (Usual, b'/') => {
                self.exten_start = None;
                self.state = Slash;
                self.out.push(ch);
            }
            (Usual, b'.') => {
                self.exten_start = Some(self.out.len() + 1);
                self.out.push(ch);
            }
            (Slash, b'/') => {
                if !self.merge_slashes {
                    self.out.push(ch);
                }
            }
            (Slash, b'.') => {
                self.state = Dot;
                self.out.push(ch);
            }
            (Dot, b'/') => {
                self.out.pop();
                self.state = Slash;
            }
            (Dot, b'.') => {
                self.state = DotDot;
                self.out.push(ch);
            }
            (Dot, b'?' | b'#') => {
                self.out.pop();
                return Ok(Self::end_step(ch));
            }
            (DotDot, b'/' | b'?' | b'#') => {
                self.climb()?;
                self.state = Slash;
                if ch != b'/' {
                    return Ok(Self::end_step(ch));
                }
            }
            (_, b'?' | b'#') => return Ok(Self::end_step(ch)),
            _ => {
                self.state = Usual;
                self.out.push(ch);
            }
        }
        Ok(Step::Next)
    }

    fn end_step(ch: u8) -> Step {
        if ch == b'?' {
            Step::Args
        } else {
            Step::Fragment
        }
    }

    /// Resolves a trailing `/..`: drops it and the segment before it.
    fn climb(&mut self) -> Result<(), HeadError> {
        // The output ends with "/.."; the segment to drop ends just before
        // that slash.
        let mut i = self.out.len().checked_sub(4).ok_or(INVALID_REQUEST)?;
        loop {
            if self.out[i] == b'/' {
                self.out.truncate(i + 1);
                return Ok(());
            }
            i = i.checked_sub(1).ok_or(INVALID_REQUEST)?;
        }
    }

    /// End of input: a trailing `/.` or `/..` is resolved as if a `/`
    /// followed, without writing that `/`.
    fn finish(&mut self) -> Result<(), HeadError> {
        match self.state {
            PathState::Dot => {
                self.out.pop();
            }
            PathState::DotDot => self.climb()?,
            PathState::Usual | PathState::Slash => {}
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a raw target that starts with `/` (or, for an absolute-form
/// target without a path, with `?` or nothing: `empty_path`).
pub(crate) fn normalize(raw: &[u8], empty_path: bool, merge_slashes: bool) -> Result<Normalized, HeadError> {
    if !empty_path && raw.first() != Some(&b'/') {
        return Err(INVALID_REQUEST);
    }
    if !empty_path {
        if let Some(n) = plain(raw, merge_slashes) {
            return Ok(n);
        }
    }
    resolve(raw, empty_path, merge_slashes)
}

/// [`normalize`] byte by byte, for a path that needs decoding or resolving.
fn resolve(raw: &[u8], empty_path: bool, merge_slashes: bool) -> Result<Normalized, HeadError> {
    let mut n = Normalizer {
        out: Vec::with_capacity(raw.len() + 1),
        exten_start: None,
        state: PathState::Usual,
        merge_slashes,
    };
    if empty_path {
        n.out.push(b'/');
    }
    let mut args = None;
    let mut i = 0;
    while i < raw.len() {
        let mut ch = raw[i];
        i += 1;
        if ch == b'%' {
            let hi = raw.get(i).copied().and_then(hex_value);
            let lo = raw.get(i + 1).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(INVALID_REQUEST);
            };
            i += 2;
            ch = (hi << 4) | lo;
            match ch {
                0 => return Err(INVALID_REQUEST),
                // These keep their literal meaning in the path: a decoded
                // '?' or '#' must not cut it, a decoded '%' is not decoded
                // again.
                b'%' | b'#' | b'?' => {
                    n.out.push(ch);
                    n.state = PathState::Usual;
                    continue;
                }
                _ => {}
            }
        }
        match n.feed(ch)? {
            Step::Next => continue,
            Step::Fragment => {}
            Step::Args => {
                let end = memchr::memchr(b'#', &raw[i..]).map_or(raw.len(), |p| i + p);
                args = Some(i..end);
            }
        }
        return Ok(n.into_normalized(args));
    }
    n.finish()?;
    Ok(n.into_normalized(None))
}

impl Normalizer {
    fn into_normalized(self, args: Option<Range<usize>>) -> Normalized {
        let len = self.out.len();
        Normalized { exten_start: self.exten_start.filter(|&s| s <= len), uri: Some(self.out), plain_len: 0, args }
    }
}

/// The path as it is, when normalising would not change it: nothing to
/// decode (`%`), no dot segment (`/.`), no slashes to merge. `None` sends
/// the path through [`Normalizer`]. `raw` starts with `/`.
fn plain(raw: &[u8], merge_slashes: bool) -> Option<Normalized> {
    let mut prev = 0u8;
    let mut exten_start = None;
    let mut end = raw.len();
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'%' => return None,
            b'.' if prev == b'/' => return None,
            b'/' if prev == b'/' && merge_slashes => return None,
            b'/' => exten_start = None,
            b'.' => exten_start = Some(i + 1),
            b'?' | b'#' => {
                end = i;
                break;
            }
            _ => {}
        }
        prev = b;
    }
    let args = (raw.get(end) == Some(&b'?')).then(|| {
        let from = end + 1;
        from..memchr::memchr(b'#', &raw[from..]).map_or(raw.len(), |p| from + p)
    });
    Some(Normalized { uri: None, plain_len: end, exten_start, args })
}

impl Normalized {
    /// The normalised path; `raw` is the input it was made from.
    pub(crate) fn path<'a>(&'a self, raw: &'a [u8]) -> &'a [u8] {
        self.uri.as_deref().unwrap_or(&raw[..self.plain_len])
    }
}

/// Normalises a raw (percent-encoded) path as nginx builds `r->uri`: one
/// percent-decode, `/./` and `/../` resolved, `//` merged when
/// `merge_slashes`; anything from `?` or `#` on is not part of the result.
///
/// The input must start with `/`. Errors are 400s: a bad `%` escape, a
/// decoded NUL, or `..` above the root.
pub fn normalize_uri(raw_path: &[u8], merge_slashes: bool) -> Result<Bytes, HeadError> {
    normalize(raw_path, false, merge_slashes).map(|n| Bytes::copy_from_slice(n.path(raw_path)))
}

/// A validated host: lowercase, without port or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidHost {
    /// The host name or bracketed IP literal, lowercase.
    pub host: Bytes,
    /// The port when one was given with digits (`host:` alone has none).
    pub port: Option<u16>,
}

/// Which bytes a host may hold: [`NAME`] in a reg-name, [`LITERAL`] inside
/// `[...]` (a table, as the check runs on every request).
const HOST_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let ch = c as u8;
        let common = ch.is_ascii_alphanumeric()
            || matches!(ch, b'-' | b'_' | b'~')
            // RFC 3986 sub-delims.
            || matches!(ch, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=');
        if common || ch == b'%' {
            t[c] |= NAME;
        }
        if common || ch == b':' {
            t[c] |= LITERAL;
        }
        c += 1;
    }
    t
};
const NAME: u8 = 1;
const LITERAL: u8 = 2;

/// One byte of a name or literal (the test oracle's form of the table).
#[cfg(test)]
fn host_byte_ok(ch: u8, in_literal: bool) -> bool {
    HOST_BYTES[usize::from(ch)] & if in_literal { LITERAL } else { NAME } != 0
}

/// Validates a Host value as nginx does and also returns the port.
pub fn validate_host_port(host: &[u8]) -> Result<ValidHost, HeadError> {
    let (host_len, port) = check_host(host)?;
    Ok(ValidHost { host: Bytes::from(host[..host_len].to_ascii_lowercase()), port })
}

/// Checks a Host value; returns the length of the name (without port and
/// trailing dot) and the port. Allocates nothing. nginx's rules: a name of
/// [`NAME`] bytes or a `[...]` literal of [`LITERAL`] bytes, no "..", then
/// optionally ":" and a port of digits up to 65535; a trailing dot is not
/// part of the name; an empty name is refused. (Two plain loops: it runs on
/// every request's Host, and a state machine per byte cost twice as much.)
pub(crate) fn check_host(host: &[u8]) -> Result<(usize, Option<u16>), HeadError> {
    let invalid = HeadError::BadRequest("client sent invalid host header");
    let literal = host.first() == Some(&b'[');
    // Where the name (or literal, brackets included) ends, and where the
    // port starts, if a ':' follows it.
    let mut name_end = None;
    let mut port_start = None;
    let mut last_dot: Option<usize> = None;
    // Runs of plain bytes are skipped by the table alone; only a dot, the
    // end of the name and a refused byte are looked at one by one.
    let (class, mut i) = if literal { (LITERAL, 1) } else { (NAME, 0) };
    loop {
        while host.get(i).is_some_and(|&b| HOST_BYTES[usize::from(b)] & class != 0) {
            i += 1;
        }
        match host.get(i) {
            None => break,
            Some(b'.') => {
                // ".." would let a name climb out of a server-name-based
                // path (e.g. a root built from $host).
                if last_dot.is_some_and(|d| d + 1 == i) {
                    return Err(invalid);
                }
                last_dot = Some(i);
                i += 1;
            }
            Some(b']') if literal => {
                name_end = Some(i + 1);
                match host.get(i + 1) {
                    None => {}
                    Some(b':') => port_start = Some(i + 2),
                    Some(_) => return Err(invalid),
                }
                break;
            }
            Some(b':') if !literal => {
                name_end = Some(i);
                port_start = Some(i + 1);
                break;
            }
            Some(_) => return Err(invalid),
        }
    }
    let mut host_len = match name_end {
        Some(end) => end,
        // "[..." never closed.
        None if literal => return Err(invalid),
        None => host.len(),
    };
    let mut port = None;
    for &d in port_start.map_or(&[][..], |p| &host[p..]) {
        if !d.is_ascii_digit() {
            return Err(invalid);
        }
        let value = port.unwrap_or(0u32) * 10 + u32::from(d - b'0');
        if value > u32::from(u16::MAX) {
            return Err(invalid);
        }
        port = Some(value);
    }
    if host_len > 0 && last_dot == Some(host_len - 1) {
        host_len -= 1;
    }
    if host_len == 0 {
        return Err(invalid);
    }
    Ok((host_len, port.and_then(|p| u16::try_from(p).ok())))
}

/// As [`validate_host`] for a host already held in `Bytes`: the result
/// shares its memory unless it has capitals to lower (the usual case
/// allocates nothing).
pub fn validate_host_bytes(host: &Bytes) -> Result<Bytes, HeadError> {
    let (len, _) = check_host(host)?;
    let name = &host[..len];
    if name.iter().any(u8::is_ascii_uppercase) {
        Ok(Bytes::from(name.to_ascii_lowercase()))
    } else {
        Ok(host.slice(..len))
    }
}

/// Validates a Host value as nginx's `ngx_http_validate_host`: returns it
/// lowercased, without the port and without one trailing dot. Rejects
/// (400) empty names, `..`, bytes outside RFC 3986's reg-name/IP-literal
/// sets (`/`, `\`, `@`, spaces, controls, non-ASCII), a bad or too large
/// port, and an unterminated `[`.
pub fn validate_host(host: &[u8]) -> Result<Bytes, HeadError> {
    validate_host_port(host).map(|v| v.host)
}

/// Percent-encodes `s` into `out`: the bytes `escape` selects become
/// `%XX` (upper-case hex), the others are copied. Each caller passes the
/// set its context needs (a path, an argument, a URI component).
pub fn percent_encode(out: &mut impl bytes::BufMut, s: &[u8], escape: impl Fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s {
        if escape(c) {
            out.put_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]]);
        } else {
            out.put_u8(c);
        }
    }
}

/// Whether nginx's `NGX_ESCAPE_URI` set escapes `c`: what may not stand
/// in a path as sent (RFC 3986): controls, space, `"`, `#`, `%`, `<`, `>`,
/// `?`, `\`, `^`, `` ` ``, `{`, `|`, `}`, DEL and every byte above it.
pub fn uri_escapes(c: u8) -> bool {
    c <= 0x20
        || c >= 0x7f
        || matches!(c, b'"' | b'#' | b'%' | b'<' | b'>' | b'?' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}')
}

/// Percent-encodes a decoded path for a place that needs it as sent: a
/// `Location` that redirects to it, the request line of a proxied request
/// (nginx's `ngx_escape_uri(..., NGX_ESCAPE_URI)`).
pub fn escape_uri(out: &mut impl bytes::BufMut, path: &[u8]) {
    percent_encode(out, path, uri_escapes);
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    /// What a result says, whichever way it was made.
    fn seen(raw: &[u8], n: &Normalized) -> (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>) {
        let path = n.path(raw).to_vec();
        let exten = n.exten_start.map(|s| path[s..].to_vec());
        (path, exten, n.args.clone().map(|a| raw[a].to_vec()))
    }

    /// Calls `f` with every string of up to `max_len` bytes over `alphabet`.
    fn every_string(alphabet: &[u8], max_len: u32, mut f: impl FnMut(&[u8])) {
        let mut s = Vec::new();
        for len in 0..=max_len {
            for mut code in 0..(alphabet.len() as u32).pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(alphabet[(code % alphabet.len() as u32) as usize]);
                    code /= alphabet.len() as u32;
                }
                f(&s);
            }
        }
    }

    #[test]
    fn the_plain_path_reads_as_the_resolved_one() {
        let mut checked = 0;
        every_string(b"/.a%2e?#", 5, |tail| {
            let raw = [b"/", tail].concat();
            for merge in [true, false] {
                let Some(fast) = plain(&raw, merge) else { continue };
                let slow = resolve(&raw, false, merge).expect("a plain path resolves");
                assert_eq!(seen(&raw, &fast), seen(&raw, &slow), "{:?} merge {merge}", String::from_utf8_lossy(&raw));
                checked += 1;
            }
        });
        assert!(checked > 10_000, "{checked}");
    }

    // The state machine `check_host` was before it became two loops: the
    // reference it must agree with.
    /// The oracle's scan states.
    #[derive(Clone, Copy)]
    enum HostState {
        Name,
        IpLiteral,
        AfterLiteral,
        Port,
    }

    /// Checks a Host value; returns the length of the name (without port and
    /// trailing dot) and the port. Allocates nothing.
    fn check_host_by_states(host: &[u8]) -> Result<(usize, Option<u16>), HeadError> {
        let invalid = HeadError::BadRequest("client sent invalid host header");
        let mut state = if host.first() == Some(&b'[') { HostState::IpLiteral } else { HostState::Name };
        let mut host_len = host.len();
        let mut last_dot: Option<usize> = None;
        let mut port: Option<u32> = None;
        for (i, &ch) in host.iter().enumerate() {
            match state {
                HostState::Name | HostState::IpLiteral if ch == b'.' => {
                    // ".." would let a name climb out of a server-name-based
                    // path (e.g. a root built from $host).
                    if i > 0 && last_dot == Some(i - 1) {
                        return Err(invalid);
                    }
                    last_dot = Some(i);
                }
                HostState::Name if ch == b':' => {
                    host_len = i;
                    state = HostState::Port;
                }
                HostState::IpLiteral if ch == b']' => {
                    host_len = i + 1;
                    state = HostState::AfterLiteral;
                }
                HostState::Name => {
                    if !super::host_byte_ok(ch, false) {
                        return Err(invalid);
                    }
                }
                HostState::IpLiteral => {
                    if i > 0 && !super::host_byte_ok(ch, true) {
                        return Err(invalid);
                    }
                }
                HostState::AfterLiteral if ch == b':' => state = HostState::Port,
                HostState::AfterLiteral => return Err(invalid),
                HostState::Port => {
                    if !ch.is_ascii_digit() {
                        return Err(invalid);
                    }
                    let value = port.unwrap_or(0) * 10 + u32::from(ch - b'0');
                    if value > u32::from(u16::MAX) {
                        return Err(invalid);
                    }
                    port = Some(value);
                }
            }
        }
        if matches!(state, HostState::IpLiteral) {
            return Err(invalid);
        }
        if host_len > 0 && last_dot == Some(host_len - 1) {
            host_len -= 1;
        }
        if host_len == 0 {
            return Err(invalid);
        }
        Ok((host_len, port.and_then(|p| u16::try_from(p).ok())))
    }

    #[test]
    fn check_host_agrees_with_the_state_machine_on_every_short_host() {
        let mut checked = 0;
        every_string(b"a.:[]1_/9", 6, |host| {
            assert_eq!(check_host(host), check_host_by_states(host), "{:?}", String::from_utf8_lossy(host));
            checked += 1;
        });
        for host in [&b"example.com:65535"[..], b"example.com:65536", b"[::1]:8080", b"a:99999999999", b"A.B.:0"] {
            assert_eq!(check_host(host), check_host_by_states(host));
        }
        assert!(checked > 500_000, "{checked}");
    }

    #[test]
    fn uri_escapes_is_nginx_s_uri_set() {
        // Printable ASCII nginx's NGX_ESCAPE_URI leaves as it is; every
        // other byte (controls, DEL, non-ASCII included) it escapes.
        let kept: &[u8] = b"!$&'()*+,-./0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~";
        for c in 0..=255u8 {
            assert_eq!(uri_escapes(c), !kept.contains(&c), "byte {c:#04x}");
        }
        let mut out = bytes::BytesMut::new();
        escape_uri(&mut out, b"/auto \"#%<>?\\^`{|}/\xff");
        assert_eq!(&out[..], b"/auto%20%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D/%FF");
    }
}
