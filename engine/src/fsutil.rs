//! Crash-safe file replacement: the one copy, used by the engine (weights, the MNIST
//! cache) and by the services (the aggregator's store, fn-serve's model cache).
//!
//! A reader must never see half a file: we write a temporary file in the target's own
//! folder (same file system, so `rename` is atomic), fsync it, rename it over the target,
//! then fsync the folder so the rename itself survives a crash.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` atomically: `fill` writes the content into a temporary file beside it.
/// On any error the temporary file is removed and `path` is left as it was.
pub(crate) fn write_atomic<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut File) -> Result<()>,
{
    replace(path, fill, |p, e| Error::io(p, e))
}

/// Replaces `path` with `bytes` atomically (what the services' stores and caches use):
/// after a crash at any instant, `path` holds either its old content or `bytes`, and a
/// leftover temporary is a hidden `.<name>.<pid>-<n>.tmp` beside it.
///
/// # Errors
/// The I/O error, with the path it concerns in its message.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(
        path,
        |f| f.write_all(bytes),
        |p, e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())),
    )
}

fn replace<E>(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::result::Result<(), E>,
    io_err: impl Fn(&Path, std::io::Error) -> E,
) -> std::result::Result<(), E> {
    let dir = parent_dir(path);
    let tmp = temp_path(path).map_err(|e| io_err(path, e))?;
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        fill(&mut file)?;
        file.flush().map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        sync_dir(&dir).map_err(|e| io_err(&dir, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.<name>.<pid>-<n>.tmp` beside `path`: hidden, unique per process and call, and
/// recognisable (leading dot, `.tmp` suffix) by a store cleaning up after a crash.
fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id());
    Ok(parent_dir(path).join(tmp_name))
}

/// Makes a rename (or removal) in `dir` durable. Directories cannot be opened for fsync
/// on Windows; there the change is as durable as the OS makes it.
///
/// # Errors
/// The I/O error of opening or syncing `dir`.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, |f| {
            f.write_all(b"new").map_err(|e| Error::io("x", e))
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failing_writer_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        fs::write(&path, b"old").unwrap();
        let r = write_atomic(&path, |f| {
            f.write_all(b"half").map_err(|e| Error::io("x", e))?;
            Err(Error::Data("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
