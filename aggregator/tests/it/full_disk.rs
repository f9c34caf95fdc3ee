//! The store on a full filesystem: a small tmpfs this test mounts itself, filled to several
//! levels (from nothing free to enough for a whole round, in 4 KiB pages, so some levels
//! cut a history append part way). Whatever fails, the history never shows a torn line,
//! no `.tmp` file is left, the store reopens while the disk is still full, and once space
//! is back the next round commits and the store reopens with a coherent history.
//!
//! Mounting needs root: CI runs as root, so there (or with `CI` set) a failed mount fails
//! the test; elsewhere it is skipped with a message.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use aggregator::history::{ClientRecord, ClientStatus, RoundRecord};
use aggregator::store::{ModelStore, parse_history};

const PAGE: u64 = 4096;

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let root = is_root();
        let required = root || std::env::var_os("CI").is_some();
        match (ok, required) {
            (true, _) => Some(Self { dir }),
            (false, true) => panic!(
                "cannot mount a tmpfs (root: {root}); this test must run where it can (CI runs as root)"
            ),
            (false, false) => {
                eprintln!("full_disk: skipped, mounting a tmpfs needs root");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Fills the filesystem of `dir` completely with `dir/filler`, then frees `free` bytes.
fn fill(dir: &Path, free: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0xAAu8; PAGE as usize];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    f.set_len(written.saturating_sub(free)).unwrap();
    f.sync_all().unwrap();
    path
}

/// A round record with `clients` client entries, so its history line spans several pages.
fn big_record(round: u64, version: Option<u64>, clients: usize) -> RoundRecord {
    let mut r = RoundRecord::bare(round, version, "full disk");
    r.clients = (0..clients)
        .map(|i| ClientRecord {
            client_id: format!("client-{i:04}-of-a-rather-large-federation"),
            status: ClientStatus::Accepted,
            num_examples: 500,
            epoch_loss: vec![0.25; 8],
            epoch_accuracy: vec![0.75; 8],
            train_seconds: 1.5,
            round_trip_seconds: 2.5,
            update_bytes: 1 << 20,
            update_norm: Some(3.0),
            weight: None,
            clipped_to: None,
        })
        .collect();
    r
}

/// Everything a reader must be able to rely on, whatever failed before.
fn check_coherent(store_dir: &Path, store: &ModelStore) {
    let history = fs::read(store_dir.join("history.jsonl")).unwrap_or_default();
    assert!(
        history.is_empty() || history.ends_with(b"\n"),
        "a torn history line is visible ({} bytes)",
        history.len()
    );
    let records = parse_history(&history).unwrap();
    assert_eq!(records, store.history());
    let last_version = records.iter().rev().find_map(|r| r.version);
    assert_eq!(store.latest_version(), last_version);
    if let Some(v) = last_version {
        assert!(store.read_version(v).unwrap().is_some());
    }
    for dir in [store_dir.to_path_buf(), store_dir.join("versions")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".tmp"), "leftover {name}");
        }
    }
}

#[test]
fn the_store_survives_a_full_disk_at_every_fill_level() {
    let Some(fs_) = Tmpfs::mount("512k") else {
        return;
    };
    let version = vec![b'v'; 6000];
    let line_len = serde_json::to_vec(&big_record(2, Some(2), 40))
        .unwrap()
        .len() as u64;
    assert!(line_len > 2 * PAGE, "the line must span pages: {line_len}");
    // From no page free to enough for a version, its temporary copy and the line.
    let most = (2 * version.len() as u64 + line_len) / PAGE + 3;
    let mut outcomes = Vec::new();
    for free_pages in 0..=most {
        let store_dir = fs_.path().join(format!("store-{free_pages}"));
        let store = ModelStore::open(&store_dir, "mnist").unwrap();
        store
            .commit(version.clone(), &big_record(0, Some(0), 40))
            .unwrap();
        store
            .commit(version.clone(), &big_record(1, Some(1), 40))
            .unwrap();
        let filler = fill(fs_.path(), free_pages * PAGE);

        // A completed round, then a failed one, on the full disk.
        let committed = store
            .commit(version.clone(), &big_record(2, Some(2), 40))
            .is_ok();
        let next = store.next_round();
        let failed_recorded = store.record_failure(&big_record(next, None, 40)).is_ok();
        outcomes.push((free_pages, committed, failed_recorded));
        check_coherent(&store_dir, &store);
        drop(store);

        // A restart while the disk is still full.
        let store = ModelStore::open(&store_dir, "mnist")
            .unwrap_or_else(|e| panic!("{free_pages} pages free: reopen on a full disk: {e}"));
        check_coherent(&store_dir, &store);
        drop(store);

        // Space comes back: the next rounds commit and the store reopens.
        fs::remove_file(&filler).unwrap();
        let store = ModelStore::open(&store_dir, "mnist").unwrap();
        let (round, v) = (store.next_round(), store.next_version());
        store
            .commit(version.clone(), &big_record(round, Some(v), 40))
            .unwrap();
        store
            .record_failure(&big_record(round + 1, None, 40))
            .unwrap();
        drop(store);
        let store = ModelStore::open(&store_dir, "mnist").unwrap();
        check_coherent(&store_dir, &store);
        assert_eq!(store.latest_version(), Some(v));
        assert_eq!(
            fs::read_to_string(store_dir.join("latest")).unwrap(),
            format!("{v}\n")
        );
        drop(store);
        fs::remove_dir_all(&store_dir).unwrap();
    }
    eprintln!("(free pages, round committed, failure recorded): {outcomes:?}");
    // The levels covered both outcomes: nothing fits, and everything fits.
    assert!(outcomes.iter().any(|&(_, c, f)| !c && !f), "{outcomes:?}");
    assert!(outcomes.iter().any(|&(_, c, f)| c && f), "{outcomes:?}");
}
