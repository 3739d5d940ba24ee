//! The proxy's temp file: with `proxy_buffering on`, what the upstream sends
//! beyond `proxy_buffers` while the client is slow goes to a file (up to
//! `proxy_max_temp_file_size`), and from there to the client as file
//! regions (sendfile). The file is unlinked as soon as it is created: it
//! disappears with the last reference to it, whatever happens to the request.
//!
//! What was written and not yet handed to the client is a backlog the
//! proxy keeps as two offsets, not as bufs: however much of the file waits
//! for a slow client, the memory it costs stays the same. The client's
//! output gets all of it as one region (see `pump`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
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
    /// Bytes handed to the client's output so far.
    handed: u64,
    /// Where the file was created (for the log; it is already unlinked).
    pub path: PathBuf,
}

impl Spill {
    /// Creates the file in `dir` (made if missing) and unlinks it.
    pub(crate) fn create(dir: &Path) -> io::Result<Spill> {
        let _ = std::fs::create_dir_all(dir);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{:010}.{}", n, std::process::id()));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let _ = std::fs::remove_file(&path);
        Ok(Spill { file: Arc::new(file), written: 0, handed: 0, path })
    }

    /// Appends `data` to the backlog.
    pub(crate) fn append(&mut self, data: &Bytes) -> io::Result<()> {
        (&*self.file).write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written and not yet handed to the client.
    pub(crate) fn backlog(&self) -> u64 {
        self.written - self.handed
    }

    /// The whole backlog as one region buf; `None` when there is none.
    pub(crate) fn take_backlog(&mut self) -> Option<Buf> {
        let len = self.backlog();
        if len == 0 {
            return None;
        }
        let at = self.handed;
        self.handed += len;
        Some(Buf::file(self.file.clone(), at, len))
    }
}
