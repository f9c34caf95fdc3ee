//! The memory this process really has: the tightest cgroup limit (v2 or v1) along its own
//! cgroup and the cgroup's ancestors, else the machine's available memory. fn-train derives
//! its default batch from it and fn-serve its model-body cap and admission check, so that
//! each fits the pod it ships in (a 200 MiB or 100 MiB limit) rather than the host.

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
        // The process's own cgroup and every ancestor up to the root of the hierarchy.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_cgroup_limit_along_the_path_wins() {
        let files = |p: &str| match p {
            "/sys/fs/cgroup/pod/memory.max" => Some("max\n".to_string()),
            "/sys/fs/cgroup/pod/c1/memory.max" => Some("209715200\n".to_string()),
            "/sys/fs/cgroup/memory/job/memory.limit_in_bytes" => Some("104857600".to_string()),
            "/sys/fs/cgroup/memory/memory.limit_in_bytes" => {
                Some("9223372036854771712".to_string())
            }
            _ => None,
        };
        assert_eq!(cgroup_limit("0::/pod/c1\n", files), Some(200 << 20));
        assert_eq!(
            cgroup_limit("4:memory:/job\n1:cpu:/\n", files),
            Some(100 << 20)
        );
        assert_eq!(cgroup_limit("0::/\n", files), None);
    }
}
