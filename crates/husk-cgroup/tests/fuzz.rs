//! Fuzz target: `linux.resources` → the cgroup file writes for v1 and v2
//! (`resources::plan`). Refusals are fine, panics are not.

use husk_cgroup::resources::{Resources, Version, plan};
use husk_fuzz::{fuzz, mutated};
use serde_json::json;

const KEYS: &[&str] = &[
    "devices",
    "allow",
    "type",
    "major",
    "minor",
    "access",
    "memory",
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
    "checkBeforeUpdate",
    "cpu",
    "shares",
    "quota",
    "burst",
    "period",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "idle",
    "pids",
    "limit",
    "blockIO",
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
    "rate",
    "hugepageLimits",
    "pageSize",
    "network",
    "classID",
    "priorities",
    "name",
    "priority",
    "rdma",
    "hcaHandles",
    "hcaObjects",
    "unified",
];
const STRINGS: &[&str] = &[
    "",
    "a",
    "c",
    "b",
    "rwm",
    "r",
    "x",
    "0",
    "0-1",
    "1,0",
    "0-",
    "-1",
    "2MB",
    "1GB",
    "64KB",
    "0.5MB",
    "memory.high",
    "../x",
    "/x",
    ".hidden",
    "cpu.max",
    "max",
    "eth0",
    "mlx5_0",
];

#[test]
fn resources_to_cgroup_writes() {
    let base = json!({
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1,
            "minor": 3, "access": "rw"}],
        "memory": {"limit": 1 << 26, "reservation": 1 << 25, "swap": 1 << 27, "swappiness": 60},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0",
            "realtimeRuntime": 1000, "realtimePeriod": 10000, "burst": 1000, "idle": 0},
        "pids": {"limit": 64},
        "blockIO": {"weight": 100, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
        "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]},
        "rdma": {"mlx5_0": {"hcaHandles": 1, "hcaObjects": 2}},
        "unified": {"memory.high": "max"}
    });
    fuzz(
        "linux.resources → cgroup writes",
        mutated(base, KEYS, STRINGS),
        |v| {
            if let Ok(r) = serde_json::from_value::<Resources>(v) {
                for ver in [Version::V1, Version::V2] {
                    let _ = plan(&r, ver, &[('c', 1, 3), ('b', -1, i64::MAX)]);
                }
            }
        },
    );
}
