//! [`ModelSlot`]: the served model, loaded from `MODEL_URI`, checked for newer versions
//! every poll interval, and swapped atomically.
//!
//! A request takes an `Arc` of the current [`Served`] model when it starts and keeps it
//! to the end, so a swap never disturbs a request in flight: it finishes on the version
//! it started with, and the old version is freed when its last request ends.
//!
//! Sources:
//! - a local safetensors file, memory-mapped; a newer version is noticed by the file's
//!   identity (inode, size, mtime) changing, as when the store renames a new file over it;
//! - an `http://` URL of the model store (`.../v1/models/{name}/latest`), polled with
//!   `If-None-Match: <ETag>` (304 = unchanged); a new body is streamed to a temporary
//!   file in the cache directory under /tmp (never held in memory), renamed into place,
//!   memory-mapped from there, and used at start if the store cannot be reached.
//!
//! A model is installed only if its architecture is the pinned one (the Table 1 CNN unless
//! `FEDGE_ANY_ARCHITECTURE=1`, as in fn-train) and its inference buffers fit the memory the
//! process has ([`Admission`]); a refused model leaves the current one served.
//!
//! A body larger than the cap (`FEDGE_MAX_MODEL_BYTES`, by default derived from the memory
//! the process has) is refused from its Content-Length before any byte is read, or as soon
//! as the streamed bytes pass the cap; the current model stays served and the failure is
//! counted in `fn_serve_model_load_failures_total`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::backend::Model;
use crate::metrics::Metrics;

/// What a model must satisfy to be installed.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The only architecture served; `None` = any (`FEDGE_ANY_ARCHITECTURE=1`).
    pub pinned: Option<engine::ModelSpec>,
    /// The memory the process has (bytes); `None` = unknown, not checked.
    pub memory: Option<u64>,
    /// Compute threads (each holds a scratch).
    pub threads: usize,
    /// Largest request, images.
    pub max_batch: usize,
}

impl Default for Admission {
    /// The Table 1 CNN, memory not checked.
    fn default() -> Self {
        Self {
            pinned: Some(engine::presets::table1_cnn()),
            memory: None,
            threads: 1,
            max_batch: 10_000,
        }
    }
}

impl Admission {
    /// Why `model` may not be installed, if it may not.
    fn refusal(&self, model: &Model) -> Option<String> {
        let spec = model.spec();
        if let Some(pinned) = &self.pinned
            && spec != pinned
        {
            return Some(format!(
                "its architecture {:?} is not the one served ({:?}; FEDGE_ANY_ARCHITECTURE=1 serves any)",
                spec.name, pinned.name
            ));
        }
        let memory = self.memory?;
        let need = crate::memory::inference_bytes(
            spec,
            self.threads,
            crate::backend::SCRATCH_MICRO_BATCH,
            self.max_batch,
        )
        .map_or(u64::MAX, |b| {
            b.saturating_add(crate::memory::SERVING_OVERHEAD)
        });
        (need > memory).then(|| {
            format!(
                "its inference buffers need about {} MiB, more than the {} MiB the process has",
                need >> 20,
                memory >> 20
            )
        })
    }
}

/// A loaded model with what the protocols report about it.
#[derive(Debug)]
pub struct Served {
    /// The model.
    pub model: Model,
    /// Version label (`X-Model-Version`, else the weights metadata version).
    pub version: String,
    /// Unique per load (scratch buffers are tied to it).
    pub serial: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Http(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    Ok(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

#[derive(Debug, Default)]
struct PollState {
    file: Option<FileStamp>,
    etag: Option<String>,
    client: Option<reqwest::Client>,
}

/// The served model and how to refresh it.
#[derive(Debug)]
pub struct ModelSlot {
    current: RwLock<Option<Arc<Served>>>,
    source: Source,
    cache_dir: PathBuf,
    name: String,
    poll: tokio::sync::Mutex<PollState>,
    serial: Mutex<u64>,
    metrics: Arc<Metrics>,
    max_model_bytes: u64,
    admission: Admission,
}

impl ModelSlot {
    /// A slot for `uri` (file path or http URL), empty until [`ModelSlot::refresh`] loads.
    pub fn new(uri: &str, name: &str, cache_dir: PathBuf, metrics: Arc<Metrics>) -> Self {
        let source = if uri.starts_with("http://") || uri.starts_with("https://") {
            Source::Http(uri.to_owned())
        } else {
            Source::File(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)))
        };
        Self {
            current: RwLock::new(None),
            source,
            cache_dir,
            name: name.to_owned(),
            poll: tokio::sync::Mutex::new(PollState::default()),
            serial: Mutex::new(0),
            metrics,
            max_model_bytes: crate::memory::MAX_MODEL_BYTES_CEILING,
            admission: Admission::default(),
        }
    }

    /// Removes the `.part` files of downloads that can no longer finish: a process killed
    /// mid-download leaves its `.part` in the cache for good, and each one holds up to a
    /// model body of the cache's (tmpfs, so memory) space. A `.part` is stale when the
    /// process that wrote it (the pid in its name) is gone, is this process (a restarted
    /// container reuses its pid, and this slot has not started a download yet), or has not
    /// written to it for longer than a download may take. Returns the files removed, each
    /// logged. Call once at start, before the first [`ModelSlot::refresh`].
    pub fn remove_stale_downloads(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(&self.cache_dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in dir.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = part_file_pid(&name.to_string_lossy()) else {
                continue;
            };
            let idle = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let stale = pid == std::process::id()
                || !process_alive(pid)
                || idle.is_some_and(|d| d > DOWNLOAD_TIMEOUT * 2);
            if !stale {
                continue;
            }
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), writer_pid = pid, "removed the part file of an interrupted model download");
                    removed.push(path);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove a stale part file")
                }
            }
        }
        removed
    }

    /// Installs only models that `admission` accepts.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Refuses model bodies from the store larger than `bytes`.
    pub fn with_max_model_bytes(mut self, bytes: u64) -> Self {
        self.max_model_bytes = bytes;
        self
    }

    /// The model now served, if any.
    pub fn get(&self) -> Option<Arc<Served>> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn install(&self, model: Model, version: String) -> anyhow::Result<Arc<Served>> {
        if let Some(why) = self.admission.refusal(&model) {
            tracing::warn!(version = %version, reason = %why, "model refused");
            anyhow::bail!("refusing model version {version}: {why}");
        }
        if let Some(old) = self.get()
            && !old.model.same_interface(&model)
        {
            anyhow::bail!(
                "refusing model version {version}: its input {:?} / {} classes differ from the served {:?} / {}",
                model.input_shape,
                model.num_classes,
                old.model.input_shape,
                old.model.num_classes
            );
        }
        let serial = {
            let mut s = self.serial.lock().unwrap_or_else(|p| p.into_inner());
            *s += 1;
            *s
        };
        let served = Arc::new(Served {
            model,
            version,
            serial,
        });
        self.metrics.model_loaded(
            served
                .version
                .parse::<u64>()
                .unwrap_or(served.model.version),
        );
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(served.clone());
        Ok(served)
    }

    /// Loads a newer model if there is one. Returns whether a model was (re)loaded.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let mut poll = self.poll.lock().await;
        let r = match &self.source {
            Source::File(path) => self.refresh_file(path, &mut poll).await,
            Source::Http(url) => self.refresh_http(url, &mut poll).await,
        };
        if r.is_err() {
            self.metrics.model_load_failed();
        }
        r
    }

    async fn refresh_file(&self, path: &Path, poll: &mut PollState) -> anyhow::Result<bool> {
        let now = stamp(path).with_context(|| format!("model file {}", path.display()))?;
        if poll.file.as_ref() == Some(&now) && self.get().is_some() {
            return Ok(false);
        }
        let path_owned = path.to_owned();
        let model = load_blocking(move || Model::load_file(&path_owned)).await?;
        let version = model.version.to_string();
        let served = self.install(model, version)?;
        poll.file = Some(now);
        tracing::info!(path = %path.display(), version = %served.version, "model loaded");
        Ok(true)
    }

    async fn refresh_http(&self, url: &str, poll: &mut PollState) -> anyhow::Result<bool> {
        let client = match &poll.client {
            Some(c) => c.clone(),
            None => {
                let c = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(DOWNLOAD_TIMEOUT)
                    .build()
                    .context("building the HTTP client")?;
                poll.client = Some(c.clone());
                c
            }
        };
        let mut req = client.get(url);
        if let Some(tag) = &poll.etag
            && self.get().is_some()
        {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        std::fs::create_dir_all(&self.cache_dir)
            .with_context(|| format!("creating {}", self.cache_dir.display()))?;
        let cap = self.max_model_bytes;
        let cache_dir = self.cache_dir.clone();
        let fetched = async {
            let mut resp = req.send().await.with_context(|| format!("GET {url}"))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}");
            let etag = header_str(&resp, reqwest::header::ETAG.as_str());
            let version = header_str(&resp, "x-model-version");
            if let Some(len) = resp.content_length() {
                anyhow::ensure!(
                    len <= cap,
                    "model of {len} bytes is larger than the cap of {cap} bytes"
                );
            }
            let mut part = tempfile_in(&cache_dir)?;
            let mut read = 0u64;
            while let Some(chunk) = resp
                .chunk()
                .await
                .with_context(|| format!("reading {url}"))?
            {
                read += chunk.len() as u64;
                anyhow::ensure!(
                    read <= cap,
                    "model body passed the cap of {cap} bytes; stopped reading"
                );
                part.file
                    .write_all(&chunk)
                    .context("writing the model to the cache")?;
            }
            Ok(Some((etag, version, part)))
        }
        .await;
        let (etag, version, part) = match fetched {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(false),
            Err(e) if self.get().is_none() => {
                // The store is unreachable at start: serve the cached copy if there is one.
                if let Some(cached) = self.latest_cached() {
                    tracing::warn!(error = %format!("{e:#}"), cache = %cached.display(), "model store unreachable; loading the cached model");
                    let c = cached.clone();
                    let model = load_blocking(move || Model::load_file(&c)).await?;
                    let v = model.version.to_string();
                    self.install(model, v)?;
                    return Ok(true);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let name = self.name.clone();
        let tag_for_file = version.clone();
        let (model, path) = load_blocking(move || {
            // Loaded before it is renamed, so a bad body never replaces a good cached copy
            // (the mapping stays valid across the rename).
            let model = Model::load_file(&part.path)?;
            let path = cache_path(&cache_dir, &name, tag_for_file.as_deref());
            part.persist(&path)?;
            Ok((model, path))
        })
        .await?;
        let version = version.unwrap_or_else(|| model.version.to_string());
        let served = self.install(model, version)?;
        poll.etag = etag;
        self.prune_cache(&path);
        tracing::info!(url, version = %served.version, "model loaded");
        Ok(true)
    }

    fn cache_files(&self) -> Vec<(SystemTime, PathBuf)> {
        let prefix = format!("{}-", self.name);
        let Ok(dir) = std::fs::read_dir(&self.cache_dir) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".safetensors")
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect()
    }

    fn latest_cached(&self) -> Option<PathBuf> {
        self.cache_files().into_iter().max().map(|(_, p)| p)
    }

    /// Removes cached versions other than `keep` (a mapped old version stays valid).
    fn prune_cache(&self, keep: &Path) {
        for (_, p) in self.cache_files() {
            if p != keep {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Polls for newer versions every `interval` until the process ends.
    pub async fn poll_forever(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %format!("{e:#}"), "model refresh failed; still serving the current version");
            }
        }
    }
}

fn header_str(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn load_blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("model loading task failed")?
}

/// `<dir>/<name>-v<version>.safetensors`.
fn cache_path(dir: &Path, name: &str, version: Option<&str>) -> PathBuf {
    let safe: String = version
        .unwrap_or("unversioned")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    dir.join(format!("{name}-v{safe}.safetensors"))
}

/// The longest a model download may take (the HTTP client's total timeout).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The pid in a download's file name (`.download-<pid>-<n>.part`, see [`tempfile_in`]).
fn part_file_pid(name: &str) -> Option<u32> {
    let (pid, n) = name
        .strip_prefix(".download-")?
        .strip_suffix(".part")?
        .split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process `pid` exists (Linux: `/proc/<pid>`); elsewhere assumed gone, so
/// only this platform's own downloads can be mistaken for stale ones.
fn process_alive(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new(&format!("/proc/{pid}")).exists()
}

/// A model body being downloaded: a `.part` file in the cache directory (never taken for a
/// cached model), removed unless [`Part::persist`] renames it into place.
struct Part {
    file: std::fs::File,
    path: PathBuf,
    kept: bool,
}

fn tempfile_in(dir: &Path) -> anyhow::Result<Part> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".download-{}-{n}.part", std::process::id()));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Part {
        file,
        path,
        kept: false,
    })
}

impl Part {
    /// Flushes the body to disk and renames it to `path` (atomic on one filesystem).
    fn persist(mut self, path: &Path) -> anyhow::Result<()> {
        self.file.sync_all().context("flushing the cached model")?;
        std::fs::rename(&self.path, path)
            .with_context(|| format!("caching the model in {}", path.display()))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
