//! [`Compute`]: inference off the async runtime, on a few dedicated threads.
//!
//! - Thread count = the CPU quota (`Config::compute_threads`); each thread owns its
//!   inference scratch, so nothing big is allocated per request.
//! - Dynamic batching: a thread that picks up a small request also takes the small
//!   requests already waiting for the same model (up to `batch_images` images) and
//!   predicts them in one call. Nothing waits for a batch to fill: an idle server
//!   answers a lone request at once.
//! - Large requests run chunk by chunk (their pixel buffer is already in chunks of whole
//!   images), and the engine micro-batches inside each call, so memory stays bounded.
//! - A request whose client has gone (its reply receiver dropped, as hyper drops the
//!   handler of a closed connection) stops at the next chunk boundary (256 images) and
//!   frees its input, and with it its decode budget; its images are not counted.
//! - Between the chunks of a large request, the thread predicts one small waiting request
//!   per chunk (same model, at most `batch_images` images), so small requests do not wait
//!   for a large one to finish.
//! - A small request (at most `inline_images` images) that is the only prediction
//!   request in the server (none other being decoded, queued or predicted) runs right on
//!   the calling thread, with a scratch from a small pool: a lone request skips the hop
//!   to a compute thread (about 80 us of CPU: two thread wake-ups), while under
//!   concurrency requests go to the compute threads and are batched. Off by default: on
//!   one I/O thread the "only request" test passes too often under load and defeats
//!   batching (see `Config::inline_images`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::backend::{Pixels, Scratch};
use crate::codec::images::{Chunks, ImageBuf, PixelType};
use crate::codec::response::Prediction;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model_slot::Served;

struct Job {
    model: Arc<Served>,
    input: ImageBuf,
    reply: oneshot::Sender<Result<Prediction, ApiError>>,
}

/// The compute threads and their queue.
#[derive(Debug)]
pub struct Compute {
    tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    inline_images: usize,
    pool: Mutex<Vec<(u64, Scratch)>>,
    metrics: Arc<Metrics>,
    /// Prediction requests in the server (from the start of decoding to the reply).
    busy: Arc<AtomicUsize>,
}

/// Counts one prediction request from the start of its decoding until it is dropped.
#[derive(Debug)]
pub struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("images", &self.input.images())
            .finish()
    }
}

/// Scratch tied to the model load it was made for.
struct Worker {
    scratch: Option<(u64, Scratch)>,
    batch_f32: Vec<f32>,
    batch_u8: Vec<u8>,
}

fn scratch_for<'a>(slot: &'a mut Option<(u64, Scratch)>, served: &Served) -> &'a mut Scratch {
    if slot.as_ref().map(|(s, _)| *s) != Some(served.serial) {
        *slot = None;
    }
    &mut slot
        .get_or_insert_with(|| (served.serial, served.model.scratch()))
        .1
}

/// Runs `input` through `served`'s model chunk by chunk. Before each chunk `between` runs
/// with the scratch (it may predict a small waiting request with it) and returns whether
/// this request's client has gone: then `None`.
fn run_one(
    served: &Served,
    input: &ImageBuf,
    scratch: &mut Scratch,
    between: &mut dyn FnMut(&mut Scratch) -> bool,
) -> Option<Result<Prediction, ApiError>> {
    let classes = served.model.num_classes;
    let image_len = input.image_len();
    let mut probs = vec![0f32; input.images() * classes];
    let mut at = 0;
    let mut step = |px: Pixels<'_>, scratch: &mut Scratch| -> Option<Result<(), ApiError>> {
        if between(scratch) {
            return None;
        }
        let n = px.len() / image_len;
        let r = served
            .model
            .predict(px, &mut probs[at..at + n * classes], scratch)
            .map_err(|e| ApiError::Internal(format!("{e:#}")));
        at += n * classes;
        Some(r)
    };
    match input.chunks() {
        Chunks::F32(chunks) => {
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                if let Err(e) = step(Pixels::F32(c), scratch)? {
                    return Some(Err(e));
                }
            }
        }
        Chunks::U8(chunks) => {
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                if let Err(e) = step(Pixels::U8(c), scratch)? {
                    return Some(Err(e));
                }
            }
        }
    }
    Some(Ok(Prediction { probs, classes }))
}

impl Worker {
    /// Runs `jobs`. Between the chunks of a lone (large) job it predicts one small request
    /// waiting for the same model (at most `batch_images` images) per chunk, so a large
    /// request does not starve small ones; another waiting job goes to `pending`.
    fn run(
        &mut self,
        jobs: Vec<Job>,
        metrics: &Metrics,
        rx: &Mutex<Receiver<Job>>,
        pending: &mut Option<Job>,
        batch_images: usize,
    ) {
        let Some(first) = jobs.first() else { return };
        let served = first.model.clone();
        let images: usize = jobs.iter().map(|j| j.input.images()).sum();
        let scratch = scratch_for(&mut self.scratch, &served);
        if jobs.len() == 1 {
            for job in jobs {
                let mut between = |scratch: &mut Scratch| {
                    if pending.is_none()
                        && let Ok(guard) = rx.try_lock()
                        && let Ok(small) = guard.try_recv()
                    {
                        drop(guard);
                        if Arc::ptr_eq(&small.model, &served)
                            && small.input.images() <= batch_images
                        {
                            let n = small.input.images();
                            let r = run_one(&served, &small.input, scratch, &mut |_| {
                                small.reply.is_closed()
                            });
                            drop(small.input);
                            if let Some(r) = r {
                                metrics.predicted(n);
                                let _ = small.reply.send(r);
                            }
                        } else {
                            *pending = Some(small);
                        }
                    }
                    job.reply.is_closed()
                };
                let r = run_one(&served, &job.input, scratch, &mut between);
                drop(job.input);
                if let Some(r) = r {
                    metrics.predicted(images);
                    let _ = job.reply.send(r);
                }
            }
            return;
        }
        // Fuse: copy the small inputs together, predict once, split the result.
        let classes = served.model.num_classes;
        let mut probs = vec![0f32; images * classes];
        let ty = first.input.pixel_type();
        self.batch_f32.clear();
        self.batch_u8.clear();
        for j in &jobs {
            match j.input.chunks() {
                Chunks::F32(cs) => cs.iter().for_each(|c| self.batch_f32.extend_from_slice(c)),
                Chunks::U8(cs) => cs.iter().for_each(|c| self.batch_u8.extend_from_slice(c)),
            }
        }
        let px = match ty {
            PixelType::F32 => Pixels::F32(&self.batch_f32),
            PixelType::U8 => Pixels::U8(&self.batch_u8),
        };
        let r = served
            .model
            .predict(px, &mut probs, scratch)
            .map_err(|e| format!("{e:#}"));
        metrics.predicted(images);
        let mut at = 0;
        for job in jobs {
            let n = job.input.images() * classes;
            let reply = match &r {
                Ok(()) => Ok(Prediction {
                    probs: probs[at..at + n].to_vec(),
                    classes,
                }),
                Err(e) => Err(ApiError::Internal(e.clone())),
            };
            at += n;
            drop(job.input);
            let _ = job.reply.send(reply);
        }
    }
}

fn worker_loop(rx: Arc<Mutex<Receiver<Job>>>, batch_images: usize, metrics: Arc<Metrics>) {
    let mut worker = Worker {
        scratch: None,
        batch_f32: Vec::new(),
        batch_u8: Vec::new(),
    };
    let mut pending: Option<Job> = None;
    loop {
        let jobs = {
            let Ok(guard) = rx.lock() else { return };
            let first = match pending.take() {
                Some(j) => j,
                None => match guard.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            let mut total = first.input.images();
            let mut jobs = vec![first];
            while total < batch_images {
                match guard.try_recv() {
                    Ok(j) => {
                        let same = Arc::ptr_eq(&j.model, &jobs[0].model)
                            && j.input.pixel_type() == jobs[0].input.pixel_type();
                        if same && total + j.input.images() <= batch_images {
                            total += j.input.images();
                            jobs.push(j);
                        } else {
                            pending = Some(j);
                            break;
                        }
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            jobs
        };
        worker.run(jobs, &metrics, &rx, &mut pending, batch_images);
    }
}

impl Compute {
    /// Starts `threads` compute threads.
    pub fn start(
        threads: usize,
        batch_images: usize,
        inline_images: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let m = metrics.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("fn-serve-compute-{i}"))
                    .spawn(move || worker_loop(rx, batch_images, m))?,
            );
        }
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
            inline_images,
            pool: Mutex::new(Vec::new()),
            metrics,
            busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Call at the start of a prediction request; keep the guard until the reply.
    pub fn enter(&self) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.busy.clone())
    }

    /// Predicts `input` with `served` (the caller holds a guard from [`Compute::enter`]).
    pub async fn predict(
        &self,
        served: Arc<Served>,
        input: ImageBuf,
    ) -> Result<Prediction, ApiError> {
        let images = input.images();
        if images <= self.inline_images && self.busy.load(Ordering::Acquire) <= 1 {
            return self.predict_inline(&served, input);
        }
        let (reply, rx) = oneshot::channel();
        let tx = {
            let g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            g.clone()
        };
        let Some(tx) = tx else {
            return Err(ApiError::NotReady("the server is shutting down".into()));
        };
        tx.send(Job {
            model: served,
            input,
            reply,
        })
        .map_err(|_| ApiError::Internal("the compute threads have stopped".into()))?;
        rx.await
            .map_err(|_| ApiError::Internal("a compute thread dropped a request".into()))?
    }

    fn predict_inline(&self, served: &Served, input: ImageBuf) -> Result<Prediction, ApiError> {
        let mut slot = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            let i = pool.iter().position(|(s, _)| *s == served.serial);
            i.map(|i| pool.swap_remove(i))
        };
        // Inline runs on the request's own task: it cannot outlive its client.
        let r = run_one(served, &input, scratch_for(&mut slot, served), &mut |_| {
            false
        })
        .unwrap_or_else(|| Err(ApiError::Internal("prediction abandoned".into())));
        self.metrics.predicted(input.images());
        if let Some(s) = slot {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.retain(|(serial, _)| *serial == served.serial);
            if pool.len() < 4 {
                pool.push(s);
            }
        }
        r
    }

    /// Stops the threads after the queued work is done.
    pub fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handles: Vec<_> =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}
