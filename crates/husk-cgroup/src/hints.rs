//! What a cgroup file allows, in words, for an error after the kernel refused a write: the
//! kernel says only EINVAL or ERANGE, while the host knows the bounds (a parent's cpuset, the
//! memory already in use). Read when the error is made, so what it says is current.

use std::fs;
use std::path::Path;

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first of `files` in `dir` that can be read, with its path.
fn first(dir: &Path, files: &[&str]) -> Option<(String, String)> {
    files.iter().find_map(|f| {
        let p = dir.join(f);
        read(&p).map(|v| (v, p.display().to_string()))
    })
}

/// `; ...` saying what the host allows for `path`, or "" when there is nothing to add.
pub(crate) fn allowed(path: &Path, value: &str, errno: Option<i32>) -> String {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name().and_then(|f| f.to_str())) else {
        return String::new();
    };
    let parent = dir.parent().unwrap_or(dir);
    let hint = match (file, errno) {
        ("cpuset.cpus", _) => first(
            parent,
            &["cpuset.effective_cpus", "cpuset.cpus.effective", "cpuset.cpus"],
        )
        .map(|(v, p)| format!("this cgroup may use cpus {v} (from {p})")),
        ("cpuset.mems", _) => first(
            parent,
            &["cpuset.effective_mems", "cpuset.mems.effective", "cpuset.mems"],
        )
        .map(|(v, p)| format!("this cgroup may use memory nodes {v} (from {p})")),
        ("cpu.cfs_quota_us" | "cpu.max", _) => {
            let mut h = "the kernel takes a quota of at least 1000 µs per period of 1000 to 1000000 µs"
                .to_string();
            if let Some(q) = read(&parent.join("cpu.cfs_quota_us")).filter(|q| q != "-1") {
                let period = read(&parent.join("cpu.cfs_period_us")).unwrap_or_default();
                h += &format!(
                    ", and on cgroup v1 no more than the parent's {q} µs per {period} µs ({})",
                    parent.display()
                );
            }
            Some(h)
        }
        ("cpu.cfs_period_us", _) => {
            Some("the kernel takes a period of 1000 to 1000000 µs".to_string())
        }
        ("cpu.rt_runtime_us" | "cpu.rt_period_us", _) => {
            first(parent, &["cpu.rt_runtime_us"]).map(|(v, p)| {
                format!(
                    "a cgroup's realtime runtime must fit in its parent's ({v} µs in {p}), less what its siblings hold"
                )
            })
        }
        ("memory.limit_in_bytes" | "memory.max", Some(libc::EBUSY)) => {
            first(dir, &["memory.usage_in_bytes", "memory.current"]).map(|(v, p)| {
                format!("the cgroup already uses {v} bytes ({p}) and the kernel could not reclaim below the new limit")
            })
        }
        ("memory.limit_in_bytes", Some(libc::EINVAL)) => {
            let above = |memsw: &str| match (value.parse::<i64>(), memsw.parse::<i64>()) {
                (Ok(l), Ok(m)) => l > m,
                _ => false,
            };
            if value.starts_with('-') && value != "-1" {
                Some("a negative limit other than -1 (no limit) is refused".into())
            } else {
                first(dir, &["memory.memsw.limit_in_bytes"])
                    .filter(|(v, _)| above(v))
                    .map(|(v, p)| {
                        format!(
                            "the memory limit cannot exceed the memory+swap limit ({v} bytes in {p})"
                        )
                    })
            }
        }
        ("memory.memsw.limit_in_bytes", Some(libc::EINVAL)) => {
            first(dir, &["memory.limit_in_bytes"]).map(|(v, p)| {
                format!("memory.swap (memory+swap) must be at least the memory limit ({v} bytes in {p})")
            })
        }
        ("cpu.weight", _) | ("io.weight", _) => Some("the kernel takes 1 to 10000".into()),
        ("io.bfq.weight", _) => Some("the kernel takes 1 to 1000".into()),
        ("cpu.idle", _) => Some("the kernel takes 0 or 1".into()),
        (f, Some(libc::ENODEV)) if f.starts_with("blkio.") || f.starts_with("io.") => {
            Some("no block device with that major:minor on this host".into())
        }
        _ => None,
    };
    hint.map_or(String::new(), |h| format!("; {h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_read_the_parent() {
        let tmp = std::env::temp_dir().join(format!("husk-cg-hints-{}", std::process::id()));
        let leaf = tmp.join("c");
        fs::create_dir_all(&leaf).unwrap();
        fs::write(tmp.join("cpuset.effective_cpus"), "0-1\n").unwrap();
        fs::write(tmp.join("cpu.cfs_quota_us"), "50000\n").unwrap();
        fs::write(tmp.join("cpu.cfs_period_us"), "100000\n").unwrap();
        fs::write(leaf.join("memory.usage_in_bytes"), "1234\n").unwrap();
        let h = allowed(&leaf.join("cpuset.cpus"), "5", Some(libc::ERANGE));
        assert_eq!(
            h,
            format!(
                "; this cgroup may use cpus 0-1 (from {}/cpuset.effective_cpus)",
                tmp.display()
            )
        );
        let h = allowed(&leaf.join("cpu.cfs_quota_us"), "100", Some(libc::EINVAL));
        assert!(h.contains("at least 1000 µs"), "{h}");
        assert!(h.contains("the parent's 50000 µs per 100000 µs"), "{h}");
        let h = allowed(
            &leaf.join("memory.limit_in_bytes"),
            "4096",
            Some(libc::EBUSY),
        );
        assert!(h.contains("already uses 1234 bytes"), "{h}");
        assert_eq!(allowed(&leaf.join("pids.max"), "x", Some(libc::EINVAL)), "");
        fs::write(leaf.join("memory.memsw.limit_in_bytes"), "1000\n").unwrap();
        let limit = leaf.join("memory.limit_in_bytes");
        assert!(allowed(&limit, "2000", Some(libc::EINVAL)).contains("(1000 bytes in "));
        assert_eq!(allowed(&limit, "500", Some(libc::EINVAL)), "");
        assert!(allowed(&limit, "-5", Some(libc::EINVAL)).contains("other than -1"));
        fs::remove_dir_all(&tmp).unwrap();
    }
}
