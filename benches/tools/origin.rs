//! The benchmark suite's origin and client (std only; `benches/suite.sh`
//! builds it with `rustc -O`, it is not a Cargo target).
//!
//!   origin serve PORTFILE
//!       Listens on a free 127.0.0.1 port, writes the port to PORTFILE, and
//!       serves until killed, one thread per connection, keep-alive. A GET
//!       whose path ends in a number N (`/stream/2147483648`) gets N bytes of
//!       payload as `Transfer-Encoding: chunked` in 64 KiB chunks (one
//!       `write` of size line + 64 KiB + CRLF each, from one prepared
//!       buffer); any other path gets a 1 KiB body with Content-Length.
//!
//!   origin get PORT PATH [HEADER...]
//!       One `GET PATH` on 127.0.0.1:PORT (extra request headers such as
//!       `Accept-Encoding: gzip` as arguments), the body read in 1 MiB reads
//!       and dropped; chunked framing is parsed and checked, Content-Length
//!       and close-delimited bodies are counted. Prints
//!       `STATUS BODY_BYTES SECONDS` (body bytes after de-chunking, seconds
//!       from connect to the last byte).
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let r = match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 3 => serve(&args[2]),
        Some("get") if args.len() >= 4 => get(&args[2], &args[3], &args[4..]),
        _ => {
            eprintln!("usage: origin serve PORTFILE | origin get PORT PATH [HEADER...]");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("origin: {e}");
        std::process::exit(1);
    }
}

fn serve(portfile: &str) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    std::fs::write(portfile, format!("{}\n", listener.local_addr()?.port()))?;
    let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
    chunk.extend((0..CHUNK).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37]));
    chunk.extend_from_slice(b"\r\n");
    let chunk: &'static [u8] = Box::leak(chunk.into_boxed_slice());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            let _ = connection(conn, chunk);
        });
    }
    Ok(())
}

fn connection(conn: TcpStream, chunk: &[u8]) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let small_body: Vec<u8> = (0..1024).map(|i| b"0123456789abcdef"[i % 16]).collect();
    loop {
        // Request head: the request line, then headers up to the empty line.
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut close = line.ends_with("HTTP/1.0\r\n");
        let mut body_len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let lower = h.to_ascii_lowercase();
            if lower == "\r\n" || lower == "\n" {
                break;
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
            if let Some(v) = lower.strip_prefix("content-length:") {
                body_len = v.trim().parse().unwrap_or(0);
            }
        }
        io::copy(&mut (&mut reader).take(body_len as u64), &mut io::sink())?;
        let conn_hdr = if close { "Connection: close\r\n" } else { "" };
        let n: Option<u64> = path.rsplit('/').next().and_then(|s| s.parse().ok());
        match n {
            Some(mut n) => {
                write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{conn_hdr}Transfer-Encoding: chunked\r\n\r\n")?;
                while n >= CHUNK as u64 {
                    out.write_all(chunk)?;
                    n -= CHUNK as u64;
                }
                if n > 0 {
                    let n = n as usize;
                    let head = format!("{n:x}\r\n");
                    let off = chunk.len() - 2 - CHUNK;
                    let mut last = head.into_bytes();
                    last.extend_from_slice(&chunk[off..off + n]);
                    last.extend_from_slice(b"\r\n");
                    out.write_all(&last)?;
                }
                out.write_all(b"0\r\n\r\n")?;
            }
            None => {
                write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{conn_hdr}Content-Length: {}\r\n\r\n", small_body.len())?;
                out.write_all(&small_body)?;
            }
        }
        if close {
            return Ok(());
        }
    }
}

fn get(port: &str, path: &str, headers: &[String]) -> io::Result<()> {
    let start = Instant::now();
    let conn = TcpStream::connect(format!("127.0.0.1:{port}"))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    (&conn).write_all(req.as_bytes())?;
    let mut r = BufReader::with_capacity(1 << 20, conn);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let code = status.split_whitespace().nth(1).unwrap_or("?").to_string();
    let (mut chunked, mut length) = (false, None::<u64>);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(io::Error::other("connection closed in the response head"));
        }
        let lower = h.to_ascii_lowercase();
        if lower == "\r\n" {
            break;
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok();
        }
    }
    let mut body = 0u64;
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let hex = size.trim_end().split(';').next().unwrap_or("");
            let n = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size line {size:?} after {body} bytes")))?;
            if n == 0 {
                // Trailers (none expected) and the final CRLF.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t == "\r\n" {
                        break;
                    }
                }
                break;
            }
            skip(&mut r, n)?;
            body += n;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(io::Error::other(format!("chunk not followed by CRLF after {body} bytes")));
            }
        }
    } else if let Some(n) = length {
        skip(&mut r, n)?;
        body = n;
    } else {
        body = io::copy(&mut r, &mut io::sink())?;
    }
    println!("{code} {body} {:.6}", start.elapsed().as_secs_f64());
    Ok(())
}

/// Reads and drops exactly `n` bytes.
fn skip(r: &mut BufReader<TcpStream>, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::other(format!("connection closed with {n} bytes still due")));
        }
        let take = buf.len().min(n as usize);
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}
