//! [`ModelStore`]: the crash-safe, versioned model store.
//!
//! On disk, one directory:
//!
//! ```text
//! <dir>/versions/000000.safetensors                one file per version, never rewritten in place
//! <dir>/versions/000000.server-state.safetensors   the strategy's state after that version
//!                                                  (FedAvgM's momentum), for the latest only
//! <dir>/latest                                     the current version number, as text
//! <dir>/history.jsonl                              one RoundRecord per line, appended
//! ```
//!
//! Every file that is replaced (a version, `latest`) is written to a temporary file in the
//! same directory, fsynced, renamed over its final name, and the directory is fsynced, so a
//! reader sees either the old or the new complete file. History lines are appended with one
//! write and fsynced; a crash can leave only the last line torn, and [`ModelStore::open`]
//! truncates it.
//!
//! A round commits in three steps: (1) the version file (after its server state, if any),
//! (2) the history line naming it, (3) the `latest` pointer. The history line is the commit point. On open, a version file
//! with no history line is an unfinished round and is deleted; a history line whose version
//! is newer than `latest` (a crash between 2 and 3) rolls `latest` forward. So after a crash
//! at any instant, `latest` names a complete version and the history agrees with it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use crate::history::{RoundRecord, RoundStatus};

/// What the store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A complete (newline-terminated) history line is not a valid record: the file was
    /// edited or damaged by something other than a crash.
    #[error("history line {line}: {reason}")]
    CorruptHistory {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The `latest` pointer names a version whose file is missing or refused by the check.
    #[error("version {version}: {reason}")]
    BadVersion {
        /// The version concerned.
        version: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A commit whose record does not follow the store's sequence.
    #[error("out of sequence: {0}")]
    Sequence(String),
}

/// Result alias of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a version file's bytes (e.g. that they parse as the expected architecture).
pub type VersionCheck = dyn Fn(&[u8]) -> std::result::Result<(), String> + Send + Sync;

#[derive(Debug)]
struct State {
    latest: Option<(u64, Bytes)>,
    history: Vec<RoundRecord>,
    /// Length of `history.jsonl` after its last complete line: an append that fails part
    /// way (a full disk) is cut back to it, so no torn line is ever followed by another.
    history_len: u64,
}

/// The model store: versions, the `latest` pointer and the round history of one model.
/// Methods do blocking file I/O; call them off the async runtime (`spawn_blocking`) except
/// the in-memory reads [`latest`](Self::latest), [`history`](Self::history).
#[derive(Debug)]
pub struct ModelStore {
    dir: PathBuf,
    name: String,
    state: Mutex<State>,
}

impl ModelStore {
    /// Opens (creating if needed) the store in `dir` for the model `name`, repairing what a
    /// crash may have left: temporary files, a torn last history line, a version without a
    /// history line, a `latest` pointer behind the history.
    pub fn open(dir: &Path, name: &str) -> Result<Self> {
        Self::open_checked(dir, name, &|_| Ok(()))
    }

    /// [`open`](Self::open), also running `check` on the latest version's bytes.
    pub fn open_checked(dir: &Path, name: &str, check: &VersionCheck) -> Result<Self> {
        let versions = dir.join("versions");
        fs::create_dir_all(&versions).map_err(io(&versions))?;
        remove_temporaries(dir)?;
        remove_temporaries(&versions)?;
        let (history, history_len) = load_history(&dir.join("history.jsonl"))?;
        let committed = history.iter().rev().find_map(|r| r.version);
        let pointer = read_pointer(&dir.join("latest"))?;
        let store = Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            state: Mutex::new(State {
                latest: None,
                history,
                history_len,
            }),
        };
        store.remove_uncommitted(committed)?;
        let latest = match committed {
            None => None,
            Some(v) => {
                let bytes = store
                    .read_version_file(v)?
                    .ok_or_else(|| StoreError::BadVersion {
                        version: v,
                        reason: "the history names it but its file is missing".into(),
                    })?;
                check(&bytes).map_err(|reason| StoreError::BadVersion { version: v, reason })?;
                if pointer != Some(v) {
                    tracing::warn!(?pointer, version = v, "repairing the latest pointer");
                    // The history is the commit point; a pointer that cannot be rewritten
                    // (a full disk) must not stop the aggregator from starting.
                    if let Err(e) = store.write_pointer(v) {
                        tracing::warn!(error = %e, "could not repair the latest pointer");
                    }
                }
                Some((v, Bytes::from(bytes)))
            }
        };
        if let Ok(mut state) = store.state.lock() {
            state.latest = latest;
        }
        Ok(store)
    }

    /// The model name this store serves.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn version_path(&self, version: u64) -> PathBuf {
        self.dir
            .join("versions")
            .join(format!("{version:06}.safetensors"))
    }

    fn server_state_path(&self, version: u64) -> PathBuf {
        self.dir
            .join("versions")
            .join(format!("{version:06}{SERVER_STATE_SUFFIX}"))
    }

    /// The strategy state saved with committed `version`, if one was.
    pub fn read_server_state(&self, version: u64) -> Result<Option<Vec<u8>>> {
        if self.latest_version().is_none_or(|v| version > v) {
            return Ok(None);
        }
        read_if_exists(&self.server_state_path(version))
    }

    /// The current version and its bytes, if any version exists.
    pub fn latest(&self) -> Option<(u64, Bytes)> {
        self.state.lock().ok().and_then(|s| s.latest.clone())
    }

    /// The current version number.
    pub fn latest_version(&self) -> Option<u64> {
        self.latest().map(|(v, _)| v)
    }

    /// The bytes of `version`, if it was committed.
    pub fn read_version(&self, version: u64) -> Result<Option<Bytes>> {
        if let Some((v, bytes)) = self.latest() {
            if v == version {
                return Ok(Some(bytes));
            }
            if version > v {
                return Ok(None);
            }
        } else {
            return Ok(None);
        }
        Ok(self.read_version_file(version)?.map(Bytes::from))
    }

    fn read_version_file(&self, version: u64) -> Result<Option<Vec<u8>>> {
        read_if_exists(&self.version_path(version))
    }

    /// All round records, oldest first.
    pub fn history(&self) -> Vec<RoundRecord> {
        self.state
            .lock()
            .map(|s| s.history.clone())
            .unwrap_or_default()
    }

    /// The number the next round gets: one past the last recorded round (0 when empty).
    pub fn next_round(&self) -> u64 {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.history.last().map(|r| r.round + 1))
            .unwrap_or(0)
    }

    /// The version number the next commit gets.
    pub fn next_version(&self) -> u64 {
        self.latest_version().map_or(0, |v| v + 1)
    }

    /// Durably stores `bytes` as version `record.version` and appends `record`, whose
    /// status must be `Initial` or `Completed`, whose version must be
    /// [`next_version`](Self::next_version) and whose round must be
    /// [`next_round`](Self::next_round).
    pub fn commit(&self, bytes: Vec<u8>, record: &RoundRecord) -> Result<u64> {
        self.commit_with_state(bytes, None, record)
    }

    /// [`commit`](Self::commit), first storing `server_state` (the strategy's state after
    /// this round) beside the version, so a restart continues from both. The previous
    /// version's state file is removed once the round is committed.
    pub fn commit_with_state(
        &self,
        bytes: Vec<u8>,
        server_state: Option<&[u8]>,
        record: &RoundRecord,
    ) -> Result<u64> {
        let version = self.check_sequence(record)?;
        let Some(version) = version else {
            return Err(StoreError::Sequence(
                "a committed round needs a version".into(),
            ));
        };
        if record.status == RoundStatus::Failed {
            return Err(StoreError::Sequence("a failed round has no version".into()));
        }
        let state_path = self.server_state_path(version);
        let path = self.version_path(version);
        let written = server_state
            .map_or(Ok(()), |s| write_atomic(&state_path, s))
            .and_then(|()| write_atomic(&path, &bytes))
            .and_then(|()| self.append_history(record));
        if let Err(e) = written {
            // Nothing names these files yet: remove them now rather than at the next open,
            // to give the space back.
            remove_quietly(&path);
            remove_quietly(&state_path);
            return Err(e);
        }
        // The history line is the commit point: from here the round is committed, whatever
        // happens to the pointer (repaired at the next open).
        if let Err(e) = self.write_pointer(version) {
            tracing::warn!(error = %e, version, "the latest pointer lags; the next open repairs it");
        }
        let previous = self.latest_version();
        if let Ok(mut state) = self.state.lock() {
            state.latest = Some((version, Bytes::from(bytes)));
            state.history.push(record.clone());
        }
        if let Some(p) = previous {
            let old = self.server_state_path(p);
            if let Err(e) = fs::remove_file(&old)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %old.display(), error = %e, "could not remove an old server state");
            }
        }
        Ok(version)
    }

    /// Appends a failed round's record; the current version stays.
    pub fn record_failure(&self, record: &RoundRecord) -> Result<()> {
        if record.status != RoundStatus::Failed || record.version.is_some() {
            return Err(StoreError::Sequence(
                "record_failure takes a failed round without a version".into(),
            ));
        }
        self.check_sequence(record)?;
        self.append_history(record)?;
        if let Ok(mut state) = self.state.lock() {
            state.history.push(record.clone());
        }
        Ok(())
    }

    fn check_sequence(&self, record: &RoundRecord) -> Result<Option<u64>> {
        let round = self.next_round();
        if record.round != round {
            return Err(StoreError::Sequence(format!(
                "record for round {} but the next round is {round}",
                record.round
            )));
        }
        if let Some(v) = record.version {
            let next = self.next_version();
            if v != next {
                return Err(StoreError::Sequence(format!(
                    "record for version {v} but the next version is {next}"
                )));
            }
        }
        Ok(record.version)
    }

    /// Appends `record` as one line and fsyncs it. On any failure (ENOSPC part way, a failed
    /// fsync) the file is cut back to its last complete line before the error returns, so
    /// a later append never lands on a fragment.
    fn append_history(&self, record: &RoundRecord) -> Result<()> {
        let path = self.dir.join("history.jsonl");
        let mut finite = record.clone();
        finite.make_finite();
        let mut line = serde_json::to_vec(&finite).map_err(|e| StoreError::CorruptHistory {
            line: 0,
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Sequence("the store's state lock is poisoned".into()))?;
        let good = state.history_len;
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let appended = (|| {
            // A previous failure whose cut-back failed too leaves bytes past `good`.
            if file.metadata()?.len() != good {
                file.set_len(good)?;
            }
            file.seek(SeekFrom::Start(good))?;
            file.write_all(&line)?;
            file.sync_data()
        })();
        if let Err(e) = appended {
            if let Err(cut) = file.set_len(good).and_then(|()| file.sync_all()) {
                tracing::error!(error = %cut, "could not cut a failed history append back");
            }
            return Err(io(&path)(e));
        }
        state.history_len = good + line.len() as u64;
        Ok(())
    }

    fn write_pointer(&self, version: u64) -> Result<()> {
        write_atomic(&self.dir.join("latest"), format!("{version}\n").as_bytes())
    }

    /// Deletes version files newer than the last committed version (unfinished rounds) and
    /// server-state files of any version but the committed one.
    fn remove_uncommitted(&self, committed: Option<u64>) -> Result<()> {
        let versions = self.dir.join("versions");
        for entry in fs::read_dir(&versions).map_err(io(&versions))? {
            let entry = entry.map_err(io(&versions))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let (stem, is_state) = match name.strip_suffix(SERVER_STATE_SUFFIX) {
                Some(stem) => (stem, true),
                None => match name.strip_suffix(".safetensors") {
                    Some(stem) => (stem, false),
                    None => continue,
                },
            };
            let Ok(v) = stem.parse::<u64>() else { continue };
            let stale = if is_state {
                committed != Some(v)
            } else {
                committed.is_none_or(|c| v > c)
            };
            if stale {
                tracing::warn!(file = name, "removing a file no committed round owns");
                fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        sync_dir(&versions)
    }
}

/// How a server-state file's name ends, after the zero-padded version.
const SERVER_STATE_SUFFIX: &str = ".server-state.safetensors";

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes `bytes` to `path` atomically (`engine::fsutil::write_file`: a temporary file
/// beside it, fsync, rename over `path`, fsync of the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    engine::fsutil::write_file(path, bytes).map_err(io(path))
}

/// Removes `path` if it exists, logging (not returning) any other failure: for clean-up
/// after an error that is already being returned.
fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove");
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    engine::fsutil::sync_dir(dir).map_err(io(dir))
}

fn remove_temporaries(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

fn read_pointer(path: &Path) -> Result<Option<u64>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Reads the history, truncating a torn (unterminated) last line; returns the records and
/// the file's length after the last complete line.
///
/// A complete line that does not parse but ends in a parsable record after a fragment is
/// the mark of a torn append followed by another append (stores written before appends
/// were cut back on failure): the fragment is dropped with a warning. Anything else that
/// does not parse is damage from outside and an error.
fn load_history(path: &Path) -> Result<(Vec<RoundRecord>, u64)> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io(path)(e)),
    };
    let mut content = Vec::new();
    file.read_to_end(&mut content).map_err(io(path))?;
    let complete = content
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if complete < content.len() {
        tracing::warn!(
            bytes = content.len() - complete,
            "truncating a torn last history line"
        );
        file.set_len(complete as u64).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
    }
    let records = parse_history(&content[..complete])?;
    Ok((records, complete as u64))
}

/// Parses complete history lines (see [`load_history`]).
pub fn parse_history(content: &[u8]) -> Result<Vec<RoundRecord>> {
    let mut records: Vec<RoundRecord> = Vec::new();
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = match serde_json::from_slice::<RoundRecord>(line) {
            Ok(r) => r,
            Err(e) => match after_fragment(line) {
                Some(r) => {
                    tracing::warn!(line = i + 1, "dropping a torn fragment before a record");
                    r
                }
                None => {
                    return Err(StoreError::CorruptHistory {
                        line: i + 1,
                        reason: e.to_string(),
                    });
                }
            },
        };
        if !record.is_finite() {
            // A number beyond f32 (1e39) parses as infinity and would be served as `null`.
            return Err(StoreError::CorruptHistory {
                line: i + 1,
                reason: "a number is out of range".into(),
            });
        }
        if let Some(prev) = records.last()
            && record.round != prev.round + 1
        {
            return Err(StoreError::CorruptHistory {
                line: i + 1,
                reason: format!("round {} follows round {}", record.round, prev.round),
            });
        }
        records.push(record);
    }
    Ok(records)
}

/// The record that starts after a torn fragment in `line`: the last `{"round":` past the
/// start from which the rest parses.
fn after_fragment(line: &[u8]) -> Option<RoundRecord> {
    const START: &[u8] = b"{\"round\":";
    (1..line.len())
        .rev()
        .filter(|&i| line[i..].starts_with(START))
        .find_map(|i| serde_json::from_slice(&line[i..]).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(round: u64, version: Option<u64>) -> RoundRecord {
        RoundRecord::bare(round, version, "test")
    }

    #[test]
    fn commits_reopen_and_keep_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest_version(), None);
        store.commit(b"v0".to_vec(), &record(0, Some(0))).unwrap();
        store.commit(b"v1".to_vec(), &record(1, Some(1))).unwrap();
        store.record_failure(&record(2, None)).unwrap();
        assert!(store.commit(b"x".to_vec(), &record(3, Some(5))).is_err());
        drop(store);
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest().unwrap(), (1, Bytes::from_static(b"v1")));
        assert_eq!(store.read_version(0).unwrap().unwrap(), "v0");
        assert_eq!(store.next_round(), 3);
        assert_eq!(store.next_version(), 2);
    }

    #[test]
    fn server_state_follows_the_committed_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        store.commit(b"v0".to_vec(), &record(0, Some(0))).unwrap();
        store
            .commit_with_state(b"v1".to_vec(), Some(b"m1"), &record(1, Some(1)))
            .unwrap();
        store
            .commit_with_state(b"v2".to_vec(), Some(b"m2"), &record(2, Some(2)))
            .unwrap();
        assert_eq!(store.read_server_state(2).unwrap().unwrap(), b"m2");
        assert_eq!(store.read_server_state(1).unwrap(), None, "superseded");
        assert_eq!(store.read_server_state(3).unwrap(), None, "not committed");
        drop(store);
        // A crash after round 3's state was written but before its version committed, and
        // one before round 2's predecessor state was removed.
        fs::write(
            dir.path().join("versions/000003.server-state.safetensors"),
            b"m3",
        )
        .unwrap();
        fs::write(
            dir.path().join("versions/000001.server-state.safetensors"),
            b"m1",
        )
        .unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest_version(), Some(2));
        assert_eq!(store.read_server_state(2).unwrap().unwrap(), b"m2");
        for stale in ["000001", "000003"] {
            let path = dir
                .path()
                .join(format!("versions/{stale}.server-state.safetensors"));
            assert!(!path.exists(), "{stale}");
        }
    }

    #[test]
    fn torn_line_orphan_version_and_stale_pointer_are_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        store.commit(b"v0".to_vec(), &record(0, Some(0))).unwrap();
        store.commit(b"v1".to_vec(), &record(1, Some(1))).unwrap();
        drop(store);
        // A crash after the version file of round 2 and half of its history line.
        fs::write(dir.path().join("versions/000002.safetensors"), b"v2").unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .unwrap();
        f.write_all(b"{\"round\":2,\"sta").unwrap();
        fs::write(
            dir.path().join("versions/.000003.safetensors.9.tmp"),
            b"half",
        )
        .unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest_version(), Some(1));
        assert_eq!(store.next_round(), 2);
        assert!(!dir.path().join("versions/000002.safetensors").exists());
        assert!(
            !dir.path()
                .join("versions/.000003.safetensors.9.tmp")
                .exists()
        );
        // A crash between the history line and the pointer: the pointer rolls forward.
        store.commit(b"v2".to_vec(), &record(2, Some(2))).unwrap();
        drop(store);
        fs::write(dir.path().join("latest"), b"1\n").unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest_version(), Some(2));
        assert_eq!(
            fs::read_to_string(dir.path().join("latest")).unwrap(),
            "2\n"
        );
    }

    #[test]
    fn corrupt_complete_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("history.jsonl"), b"not json\n").unwrap();
        let err = ModelStore::open(dir.path(), "mnist").unwrap_err();
        assert!(
            matches!(err, StoreError::CorruptHistory { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_fragment_with_a_record_appended_onto_it_is_repaired() {
        // What a full disk did before appends were cut back: round 2's line torn, round 3
        // appended onto the fragment; the aggregator then refused to start.
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        store.commit(b"v0".to_vec(), &record(0, Some(0))).unwrap();
        store.commit(b"v1".to_vec(), &record(1, Some(1))).unwrap();
        drop(store);
        let mut line = serde_json::to_vec(&record(2, None)).unwrap();
        line.truncate(line.len() / 2);
        line.extend(serde_json::to_vec(&record(2, Some(2))).unwrap());
        line.push(b'\n');
        fs::write(dir.path().join("versions/000002.safetensors"), b"v2").unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .unwrap();
        f.write_all(&line).unwrap();
        drop(f);
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        assert_eq!(store.latest_version(), Some(2));
        assert_eq!(store.next_round(), 3);
    }

    #[test]
    fn non_finite_numbers_never_reach_the_file_and_out_of_range_ones_are_refused() {
        // Found by the fuzz/history target: 1e39 parsed as an f32 infinity, which then
        // serialised as `null` and no longer parsed.
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        let mut r = record(0, Some(0));
        r.global = Some(crate::history::GlobalMetrics {
            loss: f32::INFINITY,
            accuracy: f32::NAN,
            per_class_accuracy: vec![],
            examples: 1,
        });
        r.timings.total = f64::NAN;
        store.commit(b"v0".to_vec(), &r).unwrap();
        drop(store);
        let store = ModelStore::open(dir.path(), "mnist").unwrap();
        let g = store.history()[0].global.clone().unwrap();
        assert_eq!((g.loss, g.accuracy), (f32::MAX, 0.0));
        let mut r = record(0, Some(0));
        r.global = Some(crate::history::GlobalMetrics {
            loss: 2.5,
            accuracy: 0.5,
            per_class_accuracy: vec![],
            examples: 1,
        });
        let line = serde_json::to_string(&r).unwrap();
        assert!(parse_history(line.as_bytes()).is_ok());
        let big = line.replace("\"loss\":2.5", "\"loss\":1e39");
        assert_ne!(big, line);
        let err = parse_history(big.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
