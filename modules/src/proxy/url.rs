//! `proxy_pass` URLs: `http://host[:port][/uri]`, `http://unix:/path:[/uri]`,
//! `http://upstream_name[/uri]`, and the same evaluated per request when the
//! URL has variables.

/// A parsed `proxy_pass` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `http` (`https` is refused: no TLS in this build).
    pub scheme: &'static str,
    /// The host as written (`backend`, `127.0.0.1`, `[::1]`, `unix:/path`).
    pub host: String,
    /// The port (the scheme's default when none was written).
    pub port: u16,
    /// A port was written.
    pub explicit_port: bool,
    /// The URI part (`/x/` in `http://b/x/`), if any.
    pub uri: Option<String>,
}

impl ProxyUrl {
    /// `$proxy_host`: the host, with the port when it is not the default.
    pub fn proxy_host(&self) -> String {
        if self.host.starts_with("unix:") {
            return "localhost".to_string();
        }
        if self.explicit_port && self.port != 80 {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }
}

/// Parses a URL as nginx's `proxy_pass` reads it; errors are nginx's words.
pub fn parse(url: &str) -> Result<ProxyUrl, String> {
    let rest = if url.len() >= 7 && url[..7].eq_ignore_ascii_case("http://") {
        &url[7..]
    } else if url.len() >= 8 && url[..8].eq_ignore_ascii_case("https://") {
        return Err(format!("https protocol requires SSL support in \"{url}\""));
    } else {
        return Err(format!("invalid URL prefix in \"{url}\""));
    };
    if let Some(path) = rest.strip_prefix("unix:") {
        // `unix:/path/sock:/uri` — the socket path ends at the first ':'.
        let (sock, uri) = match path.find(':') {
            Some(i) => (&path[..i], Some(&path[i + 1..])),
            None => (path, None),
        };
        if sock.is_empty() {
            return Err(format!("no path in the unix domain socket \"{url}\""));
        }
        let uri = uri.filter(|u| !u.is_empty()).map(str::to_string);
        return Ok(ProxyUrl { scheme: "http", host: format!("unix:{sock}"), port: 0, explicit_port: false, uri });
    }
    let (authority, uri) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (host, port) = split_port(authority).map_err(|e| format!("{e} in \"{url}\""))?;
    if host.is_empty() {
        return Err(format!("no host in \"{url}\""));
    }
    Ok(ProxyUrl {
        scheme: "http",
        host: host.to_string(),
        port: port.unwrap_or(80),
        explicit_port: port.is_some(),
        uri: uri.map(|u| if u.starts_with('?') { format!("/{u}") } else { u.to_string() }),
    })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let colon = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("invalid host")?;
        authority[end..].find(':').map(|i| end + i)
    } else {
        authority.rfind(':')
    };
    match colon {
        None => Ok((authority, None)),
        Some(i) => {
            let port: u16 = authority[i + 1..].parse().map_err(|_| "invalid port")?;
            if port == 0 {
                return Err("invalid port");
            }
            Ok((&authority[..i], Some(port)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_uri() {
        let u = parse("http://127.0.0.1:8081/x/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.explicit_port, u.uri.as_deref()),
            ("127.0.0.1", 8081, true, Some("/x/"))
        );
        assert_eq!(u.proxy_host(), "127.0.0.1:8081");
        let u = parse("http://backend").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.explicit_port, u.uri.as_deref()), ("backend", 80, false, None));
        assert_eq!(u.proxy_host(), "backend");
        let u = parse("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 9000));
        let u = parse("HTTP://h:80/").unwrap();
        assert_eq!((u.proxy_host().as_str(), u.uri.as_deref()), ("h", Some("/")));
    }

    #[test]
    fn unix_sockets() {
        let u = parse("http://unix:/tmp/s.sock:/api/").unwrap();
        assert_eq!((u.host.as_str(), u.uri.as_deref()), ("unix:/tmp/s.sock", Some("/api/")));
        assert_eq!(u.proxy_host(), "localhost");
        let u = parse("http://unix:/tmp/s.sock").unwrap();
        assert_eq!(u.uri, None);
    }

    #[test]
    fn errors_read_like_nginx() {
        assert_eq!(parse("ftp://x").unwrap_err(), "invalid URL prefix in \"ftp://x\"");
        assert_eq!(parse("http://x:99999").unwrap_err(), "invalid port in \"http://x:99999\"");
        assert_eq!(parse("http://").unwrap_err(), "no host in \"http://\"");
    }
}
