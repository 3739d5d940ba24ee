//! The proxy's temp file: with `proxy_buffering on`, what the upstream sends
//! beyond `proxy_buffers` while the client is slow goes to a file (up to
//! `proxy_max_temp_file_size`), and from there to the client as file
//! regions (sendfile). The file is unlinked as soon as it is created: it
//! disappears with the last reference to it, whatever happens to the request.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::Buf;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// An append-only temp file.
pub(crate) struct Spill {
    file: Arc<File>,
    /// Bytes written so far (the next region's offset).
    pub written: u64,
}

impl Spill {
    /// Creates the file in `dir` (made if missing) and unlinks it.
    pub(crate) fn create(dir: &Path) -> io::Result<Spill> {
        let _ = std::fs::create_dir_all(dir);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{:010}.{}", n, std::process::id()));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let _ = std::fs::remove_file(&path);
        Ok(Spill { file: Arc::new(file), written: 0 })
    }

    /// Appends `data`; the region it now occupies, as a buf.
    pub(crate) fn append(&mut self, data: &Bytes) -> io::Result<Buf> {
        (&*self.file).write_all(data)?;
        let at = self.written;
        self.written += data.len() as u64;
        Ok(Buf::file(self.file.clone(), at, data.len() as u64))
    }
}
