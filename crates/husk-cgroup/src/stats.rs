//! Statistics for `husk events`, shaped like runc's `events --stats` JSON, read from v1 or v2 files.

use crate::{Cgroup, Hierarchies};
use serde_json::{Map, Value, json};
use std::fs;
use std::path::Path;

fn read(dir: Option<&std::path::PathBuf>, file: &str) -> Option<String> {
    fs::read_to_string(dir?.join(file)).ok()
}

fn num(dir: Option<&std::path::PathBuf>, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat) as a map.
fn kv(dir: Option<&std::path::PathBuf>, file: &str) -> Map<String, Value> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|v| (k.to_string(), json!(v)))
        })
        .collect()
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// The OOM-kill counter (v1 memory.oom_control, v2 memory.events).
pub fn oom_kills(cg: &Cgroup, h: &Hierarchies) -> u64 {
    if let Some(d) = cg.dir_for_controller(h, "memory") {
        return get(&kv(Some(&d), "memory.oom_control"), "oom_kill");
    }
    get(&kv(cg.unified.as_ref(), "memory.events"), "oom_kill")
}

pub fn stats(cg: &Cgroup, h: &Hierarchies) -> Value {
    if h.layout() == crate::Layout::V2 {
        return stats_v2(cg.unified.as_ref());
    }
    let cpuacct = cg.dir_for_controller(h, "cpuacct");
    let cpu = cg.dir_for_controller(h, "cpu");
    let mem = cg.dir_for_controller(h, "memory");
    let pids = cg.dir_for_controller(h, "pids");
    let blkio = cg.dir_for_controller(h, "blkio");
    let percpu: Vec<u64> = read(cpuacct.as_ref(), "cpuacct.usage_percpu")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // cpuacct.stat is in USER_HZ (100 per second on Linux): runc reports nanoseconds.
    let acct = kv(cpuacct.as_ref(), "cpuacct.stat");
    let throttle = kv(cpu.as_ref(), "cpu.stat");
    let mstat = kv(mem.as_ref(), "memory.stat");
    let entry = |prefix: &str| {
        json!({
            "usage": num(mem.as_ref(), &format!("{prefix}usage_in_bytes")),
            "max": num(mem.as_ref(), &format!("{prefix}max_usage_in_bytes")),
            "failcnt": num(mem.as_ref(), &format!("{prefix}failcnt")),
            "limit": num(mem.as_ref(), &format!("{prefix}limit_in_bytes")),
        })
    };
    json!({
        "cpu": {
            "usage": {
                "total": num(cpuacct.as_ref(), "cpuacct.usage"),
                "percpu": percpu,
                "kernel": get(&acct, "system") * 10_000_000,
                "user": get(&acct, "user") * 10_000_000,
            },
            "throttling": {
                "periods": get(&throttle, "nr_periods"),
                "throttledPeriods": get(&throttle, "nr_throttled"),
                "throttledTime": get(&throttle, "throttled_time"),
            },
        },
        "memory": {
            "cache": get(&mstat, "cache"),
            "usage": entry("memory."),
            "swap": entry("memory.memsw."),
            "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."),
            "raw": mstat,
        },
        "pids": { "current": num(pids.as_ref(), "pids.current"), "limit": read(pids.as_ref(), "pids.max").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0) },
        "blkio": { "ioServiceBytesRecursive": blkio_entries(blkio.as_deref(), "blkio.throttle.io_service_bytes") },
        "hugetlb": {},
    })
}

fn blkio_entries(dir: Option<&Path>, file: &str) -> Vec<Value> {
    let Some(text) = dir.and_then(|d| fs::read_to_string(d.join(file)).ok()) else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f.as_slice() else { return None };
            let (major, minor) = dev.split_once(':')?;
            Some(json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?, "op": op, "value": value.parse::<u64>().ok()?}))
        })
        .collect()
}

fn stats_v2(dir: Option<&std::path::PathBuf>) -> Value {
    let cpu = kv(dir, "cpu.stat");
    let mstat = kv(dir, "memory.stat");
    let max = |f: &str| {
        read(dir, f)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    json!({
        "cpu": {
            "usage": { "total": get(&cpu, "usage_usec") * 1000, "percpu": [], "kernel": get(&cpu, "system_usec") * 1000, "user": get(&cpu, "user_usec") * 1000 },
            "throttling": { "periods": get(&cpu, "nr_periods"), "throttledPeriods": get(&cpu, "nr_throttled"), "throttledTime": get(&cpu, "throttled_usec") * 1000 },
        },
        "memory": {
            "cache": get(&mstat, "file"),
            "usage": { "usage": num(dir, "memory.current"), "max": num(dir, "memory.peak"), "failcnt": 0, "limit": max("memory.max") },
            "swap": { "usage": num(dir, "memory.swap.current"), "max": num(dir, "memory.swap.peak"), "failcnt": 0, "limit": max("memory.swap.max") },
            "raw": mstat,
        },
        "pids": { "current": num(dir, "pids.current"), "limit": read(dir, "pids.max").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0) },
        "blkio": {},
        "hugetlb": {},
    })
}
