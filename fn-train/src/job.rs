//! One training job at a time, run on its own thread, cancellable between batches.
//!
//! * [`JobSlot::try_start`] takes the node's single slot or answers 429 ([`ApiError::Busy`]);
//!   the returned [`Lease`] frees the slot when dropped and counts the job's outcome.
//! * [`run_on_thread`] moves the lease onto a dedicated OS thread (never the async runtime)
//!   and awaits the result. The slot stays taken until that thread has really stopped, so a
//!   cancelled job can never overlap the next one.
//! * The awaiting handler future holds a [`CancelOnDrop`]: when the caller disconnects,
//!   hyper drops the future, the guard flips the job's cancel flag, and the training loop's
//!   progress callback sees it at the next batch boundary and breaks.
//! * Deadlines and SIGTERM use the same flag ([`CancelReason`]); the first reason wins.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::ApiError;
use crate::metrics::{Metrics, Outcome};

/// Why a job was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CancelReason {
    /// The caller closed its connection.
    ClientDisconnected = 1,
    /// The request's deadline passed.
    Deadline = 2,
    /// The node is shutting down and the grace period ran out.
    Shutdown = 3,
}

impl CancelReason {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(CancelReason::ClientDisconnected),
            2 => Some(CancelReason::Deadline),
            3 => Some(CancelReason::Shutdown),
            _ => None,
        }
    }

    /// The metrics outcome of a job stopped for this reason.
    pub fn outcome(self) -> Outcome {
        match self {
            CancelReason::ClientDisconnected => Outcome::ClientDisconnected,
            CancelReason::Deadline => Outcome::Deadline,
            CancelReason::Shutdown => Outcome::Shutdown,
        }
    }
}

/// The shared view of the running job: identity, deadline, cancel flag, progress.
#[derive(Debug)]
pub struct JobHandle {
    round: u64,
    started: Instant,
    deadline: Option<Instant>,
    cancel: AtomicU8,
    epoch: AtomicUsize,
    epochs: AtomicUsize,
    batch: AtomicUsize,
    batches: AtomicUsize,
}

/// What `/status` shows of a running job: no data, only progress.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobStatus {
    /// Federated round.
    pub round: u64,
    /// Seconds since the job started.
    pub elapsed_seconds: f64,
    /// Current epoch (1-based once training started).
    pub epoch: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// Batches done in the current epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Set once the job was told to stop.
    pub cancelling: Option<&'static str>,
}

impl JobHandle {
    fn new(round: u64, deadline: Option<Duration>) -> Self {
        let started = Instant::now();
        Self {
            round,
            started,
            deadline: deadline.and_then(|d| started.checked_add(d)),
            cancel: AtomicU8::new(0),
            epoch: AtomicUsize::new(0),
            epochs: AtomicUsize::new(0),
            batch: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
        }
    }

    /// The job's round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// When the request was accepted.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time left before the deadline (`None` = no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Asks the job to stop; the first reason given is kept.
    pub fn cancel(&self, reason: CancelReason) {
        let _ = self
            .cancel
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The reason the job was told to stop, if it was.
    pub fn cancelled(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.cancel.load(Ordering::Acquire))
    }

    /// The check run between batches: `Break` once cancelled or past the deadline.
    pub fn check(&self) -> ControlFlow<CancelReason> {
        if self.cancelled().is_none() && self.remaining() == Some(Duration::ZERO) {
            self.cancel(CancelReason::Deadline);
        }
        match self.cancelled() {
            Some(reason) => ControlFlow::Break(reason),
            None => ControlFlow::Continue(()),
        }
    }

    /// Records where training is.
    pub fn record_progress(&self, epoch: usize, epochs: usize, batch: usize, batches: usize) {
        self.epoch.store(epoch, Ordering::Relaxed);
        self.epochs.store(epochs, Ordering::Relaxed);
        self.batch.store(batch, Ordering::Relaxed);
        self.batches.store(batches, Ordering::Relaxed);
    }

    /// A snapshot for `/status`.
    pub fn status(&self) -> JobStatus {
        JobStatus {
            round: self.round,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            epoch: self.epoch.load(Ordering::Relaxed),
            epochs: self.epochs.load(Ordering::Relaxed),
            batch: self.batch.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            cancelling: self.cancelled().map(|r| r.outcome().label()),
        }
    }
}

/// The node's single job slot.
#[derive(Debug)]
pub struct JobSlot {
    current: Mutex<Option<Arc<JobHandle>>>,
    metrics: Arc<Metrics>,
    retry_after_secs: u64,
}

impl JobSlot {
    /// An empty slot reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>, retry_after_secs: u64) -> Self {
        Self {
            current: Mutex::new(None),
            metrics,
            retry_after_secs,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<JobHandle>>> {
        // The lock is only held to swap an Option; a poisoned lock still holds a valid value.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the slot for a job of `round`, or refuses with 429 when a job runs.
    ///
    /// # Errors
    /// [`ApiError::Busy`] (counted as [`Outcome::Busy`]).
    pub fn try_start(
        self: &Arc<Self>,
        round: u64,
        deadline: Option<Duration>,
    ) -> Result<Lease, ApiError> {
        let mut current = self.lock();
        if let Some(running) = current.as_ref() {
            self.metrics.job_finished(Outcome::Busy);
            return Err(ApiError::Busy {
                round: running.round,
                retry_after: self.retry_after_secs,
            });
        }
        let handle = Arc::new(JobHandle::new(round, deadline));
        *current = Some(Arc::clone(&handle));
        self.metrics.set_running(true);
        Ok(Lease {
            slot: Arc::clone(self),
            handle,
            outcome: None,
        })
    }

    /// The running job, if any.
    pub fn current(&self) -> Option<Arc<JobHandle>> {
        self.lock().clone()
    }

    /// Cancels the running job, returning its round.
    pub fn cancel_current(&self, reason: CancelReason) -> Option<u64> {
        let current = self.current()?;
        current.cancel(reason);
        Some(current.round)
    }
}

/// Ownership of the slot. Dropping it frees the slot and counts the outcome set with
/// [`Lease::set_outcome`] (a lease dropped without one was abandoned by its caller).
#[derive(Debug)]
pub struct Lease {
    slot: Arc<JobSlot>,
    handle: Arc<JobHandle>,
    outcome: Option<Outcome>,
}

impl Lease {
    /// The job's shared handle.
    pub fn handle(&self) -> &Arc<JobHandle> {
        &self.handle
    }

    /// Sets how the job ended.
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }

    /// Sets the outcome from a result: cancellation reasons first, then the error's kind.
    pub fn set_outcome_from<T>(&mut self, result: &Result<T, ApiError>) {
        let outcome = match (result, self.handle.cancelled()) {
            (Ok(_), _) => Outcome::Ok,
            (Err(_), Some(reason)) => reason.outcome(),
            (Err(e), None) => outcome_of_error(e),
        };
        self.set_outcome(outcome);
    }
}

/// The outcome label of a failed request.
pub fn outcome_of_error(e: &ApiError) -> Outcome {
    match e {
        ApiError::BadGateway(_) => Outcome::FetchFailed,
        ApiError::DeadlineExceeded(_) => Outcome::Deadline,
        ApiError::Busy { .. } | ApiError::Conflict(_) => Outcome::Busy,
        e if e.status().is_client_error() => Outcome::Invalid,
        _ => Outcome::Error,
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let outcome = match self.outcome {
            Some(o) => o,
            None if std::thread::panicking() => Outcome::Error,
            None => self
                .handle
                .cancelled()
                .map_or(Outcome::ClientDisconnected, CancelReason::outcome),
        };
        self.slot.metrics.job_finished(outcome);
        let mut current = self.slot.lock();
        if current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &self.handle))
        {
            *current = None;
            self.slot.metrics.set_running(false);
        }
    }
}

/// Held by the handler future while the job runs; if the future is dropped before
/// [`CancelOnDrop::disarm`] (the caller disconnected), the job is cancelled.
#[derive(Debug)]
pub struct CancelOnDrop {
    handle: Option<Arc<JobHandle>>,
}

impl CancelOnDrop {
    /// Arms the guard for `handle`.
    pub fn new(handle: Arc<JobHandle>) -> Self {
        Self {
            handle: Some(handle),
        }
    }

    /// The request completed normally: do not cancel.
    pub fn disarm(mut self) {
        self.handle = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take()
            && handle.cancelled().is_none()
        {
            tracing::warn!(
                round = handle.round,
                "caller disconnected; cancelling the training job at the next batch"
            );
            handle.cancel(CancelReason::ClientDisconnected);
        }
    }
}

/// Runs `work` on a new OS thread with the lease, which is released (and the outcome counted)
/// on that thread right before the result is handed back, so the slot is free by the time the
/// caller sees the reply. Cancels the job if the awaiting future is dropped.
///
/// # Errors
/// `work`'s error, or [`ApiError::Internal`] when the thread cannot start or dies.
pub async fn run_on_thread<T, F>(mut lease: Lease, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&JobHandle) -> Result<T, ApiError> + Send + 'static,
{
    let guard = CancelOnDrop::new(Arc::clone(lease.handle()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("fn-train-job".to_owned())
        .spawn(move || {
            let result = work(lease.handle());
            lease.set_outcome_from(&result);
            drop(lease);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        // The closure (and the lease inside it) was dropped; count it as an error.
        return Err(ApiError::Internal(format!(
            "cannot start the training thread: {e}"
        )));
    }
    let result = rx
        .await
        .map_err(|_| ApiError::Internal("the training thread panicked".to_owned()))?;
    guard.disarm();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> (Arc<JobSlot>, Arc<Metrics>) {
        let m = Arc::new(Metrics::default());
        (Arc::new(JobSlot::new(Arc::clone(&m), 3)), m)
    }

    #[test]
    fn second_job_is_refused_until_the_first_lease_drops() {
        let (slot, m) = slot();
        let mut lease = slot.try_start(1, None).unwrap();
        assert!(matches!(
            slot.try_start(2, None),
            Err(ApiError::Busy {
                round: 1,
                retry_after: 3
            })
        ));
        lease.set_outcome(Outcome::Ok);
        drop(lease);
        assert_eq!((m.jobs(Outcome::Busy), m.jobs(Outcome::Ok)), (1, 1));
        assert!(slot.try_start(3, None).is_ok());
        // That lease was dropped without an outcome: an abandoned request.
        assert_eq!(m.jobs(Outcome::ClientDisconnected), 1);
    }

    #[test]
    fn first_cancel_reason_wins_and_deadline_trips_check() {
        let (slot, _) = slot();
        let lease = slot.try_start(1, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            lease.handle().check(),
            ControlFlow::Break(CancelReason::Deadline)
        );
        lease.handle().cancel(CancelReason::Shutdown);
        assert_eq!(lease.handle().cancelled(), Some(CancelReason::Deadline));
        drop(lease);
        let lease = slot.try_start(2, None).unwrap();
        assert_eq!(lease.handle().check(), ControlFlow::Continue(()));
        assert_eq!(slot.cancel_current(CancelReason::Shutdown), Some(2));
        assert_eq!(lease.handle().status().cancelling, Some("shutdown"));
    }

    #[tokio::test]
    async fn dropping_the_awaiting_future_cancels_the_thread_and_frees_the_slot() {
        let (slot, m) = slot();
        let lease = slot.try_start(1, None).unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let fut = run_on_thread(lease, move |h| {
            let _ = started_tx.send(());
            while h.check().is_continue() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err::<(), _>(ApiError::Internal("stopped".into()))
        });
        let task = tokio::spawn(fut);
        started_rx.await.unwrap();
        task.abort();
        let _ = task.await;
        // The thread notices the flag and releases the slot; poll for it.
        for _ in 0..10_000 {
            if slot.current().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(slot.current().is_none());
        assert_eq!(m.jobs(Outcome::ClientDisconnected), 1);
    }
}
