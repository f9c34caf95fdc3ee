//! How many threads the kernels may use, and when they use more than one.
//!
//! The configured count is read once: `FEDGE_THREADS` (a positive integer) if set, else
//! [`std::thread::available_parallelism`], which honours the cgroup CPU quota of a container
//! (a Knative pod limited to 1 CPU gets 1). Kernels run on rayon's *current* pool (the global
//! one, or one a caller entered with `ThreadPool::install`), capped by that count.
//!
//! Work is only split over disjoint output blocks (images, output-channel or GEMM row panels);
//! reductions are never split across threads, so results are bit-identical for any count.
//! Below [`PAR_MIN_FLOPS`] of work, or when the count is 1, kernels run inline and never touch
//! the pool.

use std::sync::LazyLock;

/// Work (in floating-point operations) below which a kernel never enters the rayon pool.
pub const PAR_MIN_FLOPS: usize = 1 << 20;

static CONFIGURED: LazyLock<usize> = LazyLock::new(|| {
    let from_env =
        std::env::var("FEDGE_THREADS")
            .ok()
            .and_then(|v| match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!(value = %v, "FEDGE_THREADS is not a positive integer; ignored");
                    None
                }
            });
    from_env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
});

/// The configured thread budget: `FEDGE_THREADS`, else `available_parallelism()` (cgroup aware).
pub fn configured_threads() -> usize {
    *CONFIGURED
}

/// Threads a kernel called from here may use: inside a rayon pool, that pool's size; outside,
/// the configured budget capped by the global pool's size. Never touches rayon when the
/// budget is 1.
pub fn current_threads() -> usize {
    if rayon::current_thread_index().is_some() {
        return rayon::current_num_threads();
    }
    let budget = configured_threads();
    if budget <= 1 {
        1
    } else {
        budget.min(rayon::current_num_threads())
    }
}

/// Builds rayon's global pool with [`configured_threads`] threads. Call once, early, from a
/// binary; returns an error if the global pool already exists.
pub fn install_global_pool() -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(configured_threads())
        .build_global()
}

/// Number of parallel workers for `tasks` independent blocks costing `flops` in total:
/// 1 (run inline) below the threshold, at one thread, or for a single block.
pub(crate) fn workers_for(flops: usize, tasks: usize) -> usize {
    if tasks <= 1 || flops < PAR_MIN_FLOPS {
        return 1;
    }
    current_threads().min(tasks)
}
