//! What memory the process really has, and what serving a model needs of it.
//!
//! fn-serve ships in a 100 MiB pod: a 150 MiB model body from the store and a model whose
//! inference buffers did not fit both OOM-killed it. So the largest model body accepted and
//! the check of a new model's buffers derive from the memory the process has (the cgroup
//! limit, v2 or v1, else the machine's available memory).
//!
//! Reading the cgroup repeats fn-train's `memory` module: the shared home for it is the
//! `service` crate, outside this change.

use engine::ModelSpec;

/// Bytes the process needs besides the model and its buffers: runtime, HTTP, request
/// bodies within the decode budget, allocator slack.
pub const SERVING_OVERHEAD: u64 = 48 << 20;

/// The largest model body accepted when nothing limits it further.
pub const MAX_MODEL_BYTES_CEILING: u64 = 256 << 20;

/// The memory this process may use, bytes: the tightest memory limit of its cgroup and
/// the cgroup's ancestors (v2 `memory.max`, v1 `memory.limit_in_bytes`, found through
/// `/proc/self/cgroup`), else `MemAvailable`; `None` when none can be read.
pub fn available() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_limit(&own, |p| std::fs::read_to_string(p).ok()).or_else(mem_available)
}

/// The tightest limit along the cgroup paths named in `proc_self_cgroup`, read with `read`.
fn cgroup_limit(proc_self_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let mut limits = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, file) = match controllers {
            "" => ("/sys/fs/cgroup", "memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            }
            _ => continue,
        };
        let mut dir = path.trim_end_matches('/').to_string();
        loop {
            if let Some(v) = read(&format!("{root}{dir}/{file}"))
                .and_then(|s| s.trim().parse::<u64>().ok())
                // v1 reports "no limit" as a huge number, v2 as "max" (not a number).
                .filter(|&v| v < 1 << 50)
            {
                limits.push(v);
            }
            match dir.rfind('/') {
                Some(i) => dir.truncate(i),
                None => break,
            }
        }
    }
    limits.into_iter().min()
}

fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The largest model body to accept from the store: a quarter of `available` (the cached
/// file is memory-mapped, and under /tmp on tmpfs it is memory too; the old and the new
/// version are both mapped during a swap), at most [`MAX_MODEL_BYTES_CEILING`]; the
/// ceiling when the memory is unknown. The Table 1 CNN is 1.7 MB.
pub fn default_max_model_bytes(available: Option<u64>) -> u64 {
    available.map_or(MAX_MODEL_BYTES_CEILING, |a| {
        (a / 4).min(MAX_MODEL_BYTES_CEILING)
    })
}

/// Estimated bytes of serving `spec` on `threads` compute threads with micro-batches of
/// `micro_batch` images and requests of up to `max_batch` images: the weights, each
/// thread's scratch (input and two activation buffers per image, plus one more for the
/// convolutions' im2col) and the probabilities of the largest request. `None` for a spec
/// that does not validate.
pub fn inference_bytes(
    spec: &ModelSpec,
    threads: usize,
    micro_batch: usize,
    max_batch: usize,
) -> Option<u64> {
    let shapes = spec.layer_shapes().ok()?;
    let max_act = shapes.iter().map(|s| s.len() as u64).max().unwrap_or(0);
    let per_image = spec.input_len() as u64 + 3 * max_act;
    let scratch = threads as u64 * micro_batch as u64 * per_image;
    let output = max_batch as u64 * spec.num_classes() as u64;
    Some(4 * (spec.num_params() as u64 + scratch + output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_cgroup_limit_along_the_path_wins() {
        let files = |p: &str| match p {
            "/sys/fs/cgroup/pod/memory.max" => Some("max\n".to_string()),
            "/sys/fs/cgroup/pod/c1/memory.max" => Some("104857600\n".to_string()),
            "/sys/fs/cgroup/memory/job/memory.limit_in_bytes" => Some("52428800".to_string()),
            "/sys/fs/cgroup/memory/memory.limit_in_bytes" => {
                Some("9223372036854771712".to_string())
            }
            _ => None,
        };
        assert_eq!(cgroup_limit("0::/pod/c1\n", files), Some(100 << 20));
        assert_eq!(
            cgroup_limit("4:memory:/job\n1:cpu:/\n", files),
            Some(50 << 20)
        );
        assert_eq!(cgroup_limit("0::/\n", files), None);
    }

    #[test]
    fn a_100_mib_pod_refuses_a_150_mib_model_body() {
        let cap = default_max_model_bytes(Some(100 << 20));
        assert_eq!(cap, 25 << 20);
        assert!(cap < 150 << 20);
        // The Table 1 CNN's weights file fits with room to spare.
        let table1 = 4 * engine::presets::table1_cnn().num_params() as u64;
        assert!(table1 * 4 < cap, "{table1}");
        assert_eq!(default_max_model_bytes(None), MAX_MODEL_BYTES_CEILING);
        assert_eq!(
            default_max_model_bytes(Some(64 << 30)),
            MAX_MODEL_BYTES_CEILING
        );
    }
}
