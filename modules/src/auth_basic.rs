//! The auth_basic module: HTTP Basic authentication against a password file.
//!
//! ```text
//! location /private/ {
//!     auth_basic           "closed site";     # or `off`; variables allowed
//!     auth_basic_user_file conf/htpasswd;     # variables allowed
//! }
//! ```
//!
//! An access-phase handler, after the access module's (as in nginx). The
//! user file is read at every request (as nginx does), in htpasswd format:
//! `user:hash` lines, anything after a further `:` ignored, `#` comments.
//! Hashes: `{PLAIN}`, `{SHA}`, `{SSHA}`, and the crypt(3) family — DES,
//! `$1$` (MD5-crypt), `$apr1$`, `$5$`, `$6$` and bcrypt `$2a$`/`$2b$`/`$2y$`
//! — from the `crypt3_rs` crate. An unknown or broken hash never matches.
//!
//! No or bad credentials, an unknown user or a wrong password answer 401
//! with `WWW-Authenticate: Basic realm="…"` (the realm as written, without
//! escaping, as nginx sends it); a missing user file answers 403, an
//! unreadable one 500, each with nginx's log line. A relative user file
//! (also after variables) is taken from the prefix. No per-request state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use bytes::Bytes;
use sha1::{Digest, Sha1};
use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::SetError;
use sluice_core::log::{os_error, Level as LogLevel};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// `auth_basic_user_file`: the path and the prefix a relative one is under.
struct UserFile {
    path: ComplexValue,
    prefix: PathBuf,
}

/// Location conf.
#[derive(Default)]
pub struct AuthBasicLocConf {
    realm: Option<Arc<ComplexValue>>,
    user_file: Option<Arc<UserFile>>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), AuthBasicLocConf> = ConfKey::new();

/// The auth_basic module.
#[derive(Debug)]
pub struct AuthBasicModule;

/// The user and password of a Basic `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
}

/// nginx's base64 decoder takes the padding as optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses `Basic <base64(user:password)>`; `None` when absent or malformed
/// or when the user is empty (nginx treats all of these as "no user").
fn credentials(header: Option<&Bytes>) -> Option<Credentials> {
    let h = header?;
    if h.len() < 6 || !h[..6].eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let encoded = h[6..].trim_ascii_start();
    if encoded.is_empty() {
        return None;
    }
    let decoded = LENIENT.decode(encoded).ok()?;
    let colon = memchr::memchr(b':', &decoded)?;
    if colon == 0 {
        return None;
    }
    Some(Credentials { user: decoded[..colon].to_vec(), password: decoded[colon + 1..].to_vec() })
}

/// The hash of `user` in an htpasswd text: the first line `user:hash`, the
/// hash ending at CR, LF or another `:`. Lines starting with `#` or CR are
/// skipped.
fn find_user<'a>(text: &'a [u8], user: &[u8]) -> Option<&'a [u8]> {
    text.split(|&c| c == b'\n').find_map(|line| {
        if line.first().is_some_and(|&c| c == b'#' || c == b'\r') {
            return None;
        }
        let rest = line.strip_prefix(user)?.strip_prefix(b":")?;
        let end = rest.iter().position(|&c| c == b'\r' || c == b':').unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

/// `{SSHA}`: base64(SHA1(password salt) salt). A stored value that does not
/// decode to at least a digest is compared with an empty salt (nginx).
fn ssha_matches(password: &[u8], stored: &[u8]) -> bool {
    let salt = match STANDARD.decode(stored) {
        Ok(d) if d.len() >= 20 => d[20..].to_vec(),
        _ => Vec::new(),
    };
    let mut digest = Sha1::new().chain_update(password).chain_update(&salt).finalize().to_vec();
    digest.extend_from_slice(&salt);
    STANDARD.encode(digest).as_bytes() == stored
}

/// Whether `password` matches the stored hash.
fn verify(password: &[u8], hash: &[u8]) -> bool {
    if let Some(plain) = hash.strip_prefix(b"{PLAIN}") {
        return plain == password;
    }
    if let Some(stored) = hash.strip_prefix(b"{SSHA}") {
        return ssha_matches(password, stored);
    }
    if let Some(stored) = hash.strip_prefix(b"{SHA}") {
        return STANDARD.encode(Sha1::digest(password)).as_bytes() == stored;
    }
    let Ok(h) = std::str::from_utf8(hash) else {
        return false;
    };
    // The crate's format dispatcher wrongly rejects `$5$`/`$6$` hashes with
    // a short salt and no `rounds=`; its per-scheme functions do not.
    if h.starts_with("$5$") {
        crypt3_rs::crypt::sha256::verify(password, h)
    } else if h.starts_with("$6$") {
        crypt3_rs::crypt::sha512::verify(password, h)
    } else {
        crypt3_rs::unix::verify(password, h)
    }
}

/// The `WWW-Authenticate` value for a realm.
fn challenge_value(realm: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(realm.len() + 14);
    v.extend_from_slice(b"Basic realm=\"");
    v.extend_from_slice(realm);
    v.push(b'"');
    Bytes::from(v)
}

/// Asks the client for credentials: 401 with the challenge.
fn challenge(r: &mut Request, realm: &[u8]) -> Flow {
    r.headers_out.add(Bytes::from_static(b"WWW-Authenticate"), challenge_value(realm));
    Flow::Status(401)
}

impl UserFile {
    /// The file's path for this request.
    fn resolve(&self, r: &Request) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let v = self.path.eval(r);
        let p = Path::new(std::ffi::OsStr::from_bytes(&v));
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.prefix.join(p)
        }
    }
}

/// Reads the user file; on failure logs as nginx does and gives the status:
/// 403 when it does not exist, else 500.
fn read_user_file(r: &Request, path: &Path) -> Result<Vec<u8>, Flow> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| {
        let (level, status) =
            if e.kind() == std::io::ErrorKind::NotFound { (LogLevel::Error, 403) } else { (LogLevel::Crit, 500) };
        sluice_core::log_error!(level, r.log_id(), "open() \"{}\" failed ({})", path.display(), os_error(&e));
        Flow::Status(status)
    })?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| {
        sluice_core::log_error!(LogLevel::Crit, r.log_id(), "pread() \"{}\" failed ({})", path.display(), os_error(&e));
        Flow::Status(500)
    })?;
    Ok(text)
}

/// Without a realm and a user file here the handler has nothing to check.
fn auth_set(loc: &sluice_http::location::Location) -> bool {
    let c = loc.conf(&KEY);
    c.realm.is_some() && c.user_file.is_some()
}

/// The access-phase handler.
fn auth_basic_handler(r: &mut Request) -> Flow {
    let conf = r.loc_conf(&KEY);
    let (Some(realm), Some(file)) = (conf.realm.clone(), conf.user_file.clone()) else {
        return Flow::Declined;
    };
    let realm = realm.eval(r);
    if &realm[..] == b"off" {
        return Flow::Declined;
    }
    let Some(cred) = credentials(r.header("authorization")) else {
        sluice_core::log_error!(LogLevel::Info, r.log_id(), "no user/password was provided for basic authentication");
        return challenge(r, &realm);
    };
    let path = file.resolve(r);
    let text = match read_user_file(r, &path) {
        Ok(t) => t,
        Err(flow) => return flow,
    };
    let user = String::from_utf8_lossy(&cred.user).into_owned();
    match find_user(&text, &cred.user) {
        None => {
            sluice_core::log_error!(
                LogLevel::Error,
                r.log_id(),
                "user \"{}\" was not found in \"{}\"",
                user,
                path.display()
            );
            challenge(r, &realm)
        }
        Some(hash) if verify(&cred.password, hash) => Flow::Ok,
        Some(_) => {
            sluice_core::log_error!(LogLevel::Error, r.log_id(), "user \"{}\": password mismatch", user);
            challenge(r, &realm)
        }
    }
}

impl HttpModule for AuthBasicModule {
    fn name(&self) -> &'static str {
        "auth_basic"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        let ctx = C::HTTP_ANY | C::HTTP_LMT;
        vec![
            Directive::new(
                "auth_basic",
                ctx,
                Args::TAKE1,
                Level::Loc,
                custom(|cx: &mut HttpConfCx, c: &mut AuthBasicLocConf, s| {
                    if c.realm.is_some() {
                        return Err(SetError::from(duplicate(s)));
                    }
                    c.realm = Some(Arc::new(cx.compile(s.arg(0))?));
                    Ok(())
                }),
            ),
            Directive::new(
                "auth_basic_user_file",
                ctx,
                Args::TAKE1,
                Level::Loc,
                custom(|cx: &mut HttpConfCx, c: &mut AuthBasicLocConf, s| {
                    if c.user_file.is_some() {
                        return Err(SetError::from(duplicate(s)));
                    }
                    let path = cx.compile(s.arg(0))?;
                    c.user_file = Some(Arc::new(UserFile { path, prefix: cx.prefix.clone() }));
                    Ok(())
                }),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(AuthBasicLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &AuthBasicLocConf = downcast(parent);
        let c: &mut AuthBasicLocConf = downcast_mut(child);
        if c.realm.is_none() {
            c.realm.clone_from(&p.realm);
        }
        if c.user_file.is_none() {
            c.user_file.clone_from(&p.user_file);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(
            Phase::Access,
            Arc::new(sluice_http::Gated { handler: auth_basic_handler, wanted_in: auth_set }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> Option<Credentials> {
        credentials(Some(&Bytes::from(format!("Basic {}", STANDARD.encode(user_pass)))))
    }

    #[test]
    fn credentials_parse_as_nginx() {
        assert_eq!(basic("joe:secret"), Some(Credentials { user: b"joe".to_vec(), password: b"secret".to_vec() }));
        assert_eq!(basic("joe:a:b").unwrap().password, b"a:b");
        assert_eq!(basic("joe:").unwrap().password, b"");
        assert_eq!(basic(":pw"), None, "empty user");
        assert_eq!(basic("nocolon"), None);
        // Scheme case-insensitive, extra spaces, padding optional.
        let h = Bytes::from_static(b"bASIC   am9lOnNlY3JldA");
        assert_eq!(credentials(Some(&h)).unwrap().user, b"joe");
        assert_eq!(credentials(Some(&Bytes::from_static(b"Bearer abc"))), None);
        assert_eq!(credentials(Some(&Bytes::from_static(b"Basic !!!!"))), None);
        assert_eq!(credentials(Some(&Bytes::from_static(b"Basic "))), None);
        assert_eq!(credentials(None), None);
    }

    #[test]
    fn user_file_lines() {
        let text = b"# comment\n\r\njoe2:x\njoe:{PLAIN}pw:extra\r\njoe:{PLAIN}second\nlast:{PLAIN}end";
        assert_eq!(find_user(text, b"joe"), Some(&b"{PLAIN}pw"[..]));
        assert_eq!(find_user(text, b"joe2"), Some(&b"x"[..]));
        assert_eq!(find_user(text, b"last"), Some(&b"{PLAIN}end"[..]), "no final newline");
        assert_eq!(find_user(text, b"jo"), None);
        assert_eq!(find_user(text, b"# comment"), None);
        assert_eq!(find_user(b"#joe:{PLAIN}pw\n", b"#joe"), None, "a comment is never a user");
    }

    #[test]
    fn schemes_from_nginx_tests() {
        // Hashes of "password" as nginx's auth_basic.t writes them.
        let ok = [
            "{PLAIN}password",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0",
            "$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.",
            // crypt("password", salt) by the system's libcrypt:
            "sa3tHJ3/KuYvI",
            "$1$salt$qJH7.N4xYta3aEG/dfqo/0",
            "$5$salt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1",
            "$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.",
            "$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe",
            "$2b$04$abcdefghijklmnopqrstuughE8Ev8uGFaUgY2cNEySvxngrb/Jzdm",
            "$2a$04$abcdefghijklmnopqrstuughE8Ev8uGFaUgY2cNEySvxngrb/Jzdm",
        ];
        for h in ok {
            assert!(verify(b"password", h.as_bytes()), "{h}");
            assert!(!verify(b"123", h.as_bytes()), "{h} wrong");
        }
        let broken = [
            "$1$",
            "$apr1$",
            "{SSHA}_____wQadOA1e+/f+T+H3eCQQhRzYWx0",
            "{SSHA}Zm9vCg==",
            "{SHA}_____Mm5Pz8GgiULbPgzG37mj9g=",
            "{SHA}Zm9vCg==",
            "$9$unknown",
            "",
        ];
        for h in broken {
            assert!(!verify(b"1", h.as_bytes()), "{h}");
        }
    }

    #[test]
    fn challenge_header() {
        assert_eq!(&challenge_value(b"closed site")[..], b"Basic realm=\"closed site\"");
    }
}
