//! `linux.resources` → systemd unit properties, with runc's conversions (runc's docs/systemd.md
//! tables). Derived from the cgroup writes husk plans anyway, so the values are the ones the
//! files get (a `unified` key included); what systemd cannot express is left to those writes,
//! which follow the properties as they do in runc.

use super::dbus::Value;
use crate::resources::{DeviceRule, Version, Write};

pub type Prop = (String, Value);

fn prop(name: &str, v: Value) -> Prop {
    (name.to_string(), v)
}

/// A cgroup file's limit as systemd's uint64 ("max" and negatives are infinity).
fn limit(v: &str) -> Option<u64> {
    match v.trim() {
        "max" => Some(u64::MAX),
        v if v.starts_with('-') => v.parse::<i64>().ok().map(|_| u64::MAX),
        v => v.parse().ok(),
    }
}

/// runc's addCpuQuota: systemd keeps a quota per second of CPU time, in whole percents, so a
/// fraction is rounded up to the next 10 ms (a child may then still set the exact quota).
fn cpu_quota(props: &mut Vec<Prop>, quota: i64, period: u64, sd_version: u32) {
    if period != 0 && sd_version >= 242 {
        props.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = u64::MAX;
    if quota > 0 {
        let period = if period == 0 { 100_000 } else { period };
        per_sec = quota as u64 * 1_000_000 / period;
        if per_sec % 10_000 != 0 {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    props.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// A cpuset list ("0-3,8") as systemd's bitmask: byte i, bit j is CPU (or node) 8i+j.
pub fn list_to_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let n = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < 8192)
                .ok_or_else(|| format!("\"{list}\" is not a cpu list (at \"{part}\")"))
        };
        let (lo, hi) = (n(lo)?, n(hi)?);
        if lo > hi {
            return Err(format!("\"{list}\" is not a cpu list (at \"{part}\")"));
        }
        for i in lo..=hi {
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(bytes)
}

/// The properties for the planned writes of this layout. `sd_version` gates what older
/// systemds refuse (CPUQuotaPeriodUSec from 242, AllowedCPUs from 244), as runc does.
pub fn from_writes(writes: &[Write], v: Version, sd_version: u32) -> Result<Vec<Prop>, String> {
    let mut props = Vec::new();
    let (mut quota, mut period) = (None, None);
    for w in writes {
        let num = || {
            limit(&w.value).ok_or_else(|| format!("{}: \"{}\" is not a number", w.file, w.value))
        };
        let name = match (v, w.file.as_str()) {
            (Version::V2, "memory.max") => "MemoryMax",
            (Version::V2, "memory.high") => "MemoryHigh",
            (Version::V2, "memory.low") => "MemoryLow",
            (Version::V2, "memory.min") => "MemoryMin",
            (Version::V2, "memory.swap.max") => "MemorySwapMax",
            (Version::V2, "cpu.weight") => "CPUWeight",
            (_, "pids.max") => "TasksMax",
            (Version::V1, "memory.limit_in_bytes") => "MemoryLimit",
            (Version::V1, "cpu.shares") => "CPUShares",
            (Version::V1, "blkio.weight") => "BlockIOWeight",
            (Version::V2, "cpu.max") => {
                let mut f = w.value.split_whitespace();
                let q = f.next().unwrap_or("max");
                let bad = || format!("cpu.max: \"{}\"", w.value);
                quota = Some(if q == "max" {
                    0
                } else {
                    q.parse().map_err(|_| bad())?
                });
                let p = f.next().map(str::parse).transpose();
                period = Some(p.map_err(|_| bad())?.unwrap_or(100_000));
                continue;
            }
            (Version::V1, "cpu.cfs_quota_us") => {
                quota = Some(
                    w.value
                        .parse()
                        .map_err(|_| format!("{}: \"{}\"", w.file, w.value))?,
                );
                continue;
            }
            (Version::V1, "cpu.cfs_period_us") => {
                period = Some(num()?);
                continue;
            }
            (_, f @ ("cpuset.cpus" | "cpuset.mems")) => {
                if sd_version >= 244 {
                    let bits = list_to_bits(&w.value).map_err(|e| format!("{f}: {e}"))?;
                    let name = if f == "cpuset.cpus" {
                        "AllowedCPUs"
                    } else {
                        "AllowedMemoryNodes"
                    };
                    props.push(prop(name, bytes(bits)));
                }
                continue;
            }
            _ => continue,
        };
        props.push(prop(name, Value::U64(num()?)));
    }
    if quota.is_some() || period.is_some() {
        cpu_quota(
            &mut props,
            quota.unwrap_or(0),
            period.unwrap_or(0),
            sd_version,
        );
    }
    Ok(props)
}

fn bytes(b: Vec<u8>) -> Value {
    Value::Array("y".into(), b.into_iter().map(Value::Byte).collect())
}

/// The major number's name in /proc/devices ("char-pts"), which is how systemd names every
/// minor of a major.
fn major_name(proc_devices: &str, block: bool, major: i64) -> Option<String> {
    let section = if block {
        "Block devices:"
    } else {
        "Character devices:"
    };
    let text = proc_devices.split_once(section)?.1;
    text.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.ends_with(':'))
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
        .map(|n| format!("{}-{n}", if block { "block" } else { "char" }))
}

/// One allow rule as a DeviceAllow entry, or None when systemd has no name for it.
fn device_entry(r: &DeviceRule, proc_devices: &str) -> Option<(String, String)> {
    let block = match r.kind.as_deref() {
        Some("c") => false,
        Some("b") => true,
        _ => return None,
    };
    let kind = if block { "block" } else { "char" };
    let spec = match (r.major.filter(|m| *m >= 0), r.minor.filter(|m| *m >= 0)) {
        (None, None) => format!("{kind}-*"),
        (Some(major), None) => major_name(proc_devices, block, major)?,
        (Some(major), Some(minor)) => format!("/dev/{kind}/{major}:{minor}"),
        (None, Some(_)) => return None,
    };
    let access = r
        .access
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    Some((spec, access.to_string()))
}

fn all_devices(r: &DeviceRule) -> bool {
    matches!(r.kind.as_deref(), None | Some("a")) && r.major.is_none() && r.minor.is_none()
}

/// DevicePolicy and DeviceAllow for the rules as applied (runc's defaults and the container's
/// nodes already in `rules`). systemd keeps only an allow list: a deny that punches a hole in
/// what an earlier rule allowed cannot be said, and then no device property is set at all —
/// the device files (v1) or BPF program (v2) husk writes after hold the rules alone.
pub fn devices(rules: &[DeviceRule], proc_devices: &str) -> Vec<Prop> {
    let mut allow_all = false;
    let mut list: Vec<(&DeviceRule, (String, String))> = Vec::new();
    for r in rules {
        if all_devices(r) {
            allow_all = r.allow;
            list.clear();
            continue;
        }
        if r.allow && allow_all {
            continue;
        }
        if r.allow {
            match device_entry(r, proc_devices) {
                Some(e) => list.push((r, e)),
                None => return Vec::new(),
            }
            continue;
        }
        // A deny: a no-op where nothing allowed overlaps it, the removal of an allow it matches
        // exactly; anything else is a hole systemd cannot express.
        if allow_all {
            return Vec::new();
        }
        let same = |a: &DeviceRule| {
            (a.kind.as_deref(), a.major, a.minor, a.access.as_deref())
                == (r.kind.as_deref(), r.major, r.minor, r.access.as_deref())
        };
        if list.iter().any(|(a, _)| overlaps(a, r) && !same(a)) {
            return Vec::new();
        }
        list.retain(|(a, _)| !same(a));
    }
    let policy = if allow_all { "auto" } else { "strict" };
    let entries = list
        .into_iter()
        .map(|(_, (s, a))| Value::Struct(vec![Value::Str(s), Value::Str(a)]))
        .collect();
    vec![
        prop("DevicePolicy", Value::Str(policy.into())),
        prop("DeviceAllow", Value::Array("(ss)".into(), entries)),
    ]
}

/// Whether two rules can name a common device (a missing number is every number).
fn overlaps(a: &DeviceRule, b: &DeviceRule) -> bool {
    let num = |x: Option<i64>, y: Option<i64>| match (x.filter(|n| *n >= 0), y.filter(|n| *n >= 0))
    {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let kind = |k: &DeviceRule| k.kind.clone().unwrap_or_else(|| "a".into());
    (kind(a) == kind(b) || kind(a) == "a" || kind(b) == "a")
        && num(a.major, b.major)
        && num(a.minor, b.minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{self, Resources};

    fn props(json: &str, v: Version, sd: u32) -> Vec<Prop> {
        let res: Resources = serde_json::from_str(json).unwrap();
        from_writes(&resources::plan(&res, v, &[]).unwrap().writes, v, sd).unwrap()
    }

    fn u(name: &str, n: u64) -> Prop {
        prop(name, Value::U64(n))
    }

    #[test]
    fn v2_resources_become_runcs_properties() {
        let p = props(
            r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1,3","mems":"0"},
                "pids":{"limit":100},"unified":{"memory.high":"90000000","pids.max":"max"}}"#,
            Version::V2,
            252,
        );
        assert_eq!(
            p,
            vec![
                u("MemoryMax", 104857600),
                u("MemorySwapMax", 104857600),
                u("MemoryLow", 52428800),
                u("CPUWeight", 39),
                prop("AllowedCPUs", bytes(vec![0b1011])),
                prop("AllowedMemoryNodes", bytes(vec![1])),
                u("TasksMax", 100),
                u("MemoryHigh", 90000000),
                u("TasksMax", u64::MAX),
                u("CPUQuotaPeriodUSec", 100000),
                u("CPUQuotaPerSecUSec", 500000),
            ]
        );
    }

    #[test]
    fn v1_resources_become_runcs_properties() {
        let p = props(
            r#"{"memory":{"limit":-1},"cpu":{"shares":512,"quota":12345},"pids":{"limit":-1},
                "blockIO":{"weight":300}}"#,
            Version::V1,
            252,
        );
        assert_eq!(
            p,
            vec![
                u("MemoryLimit", u64::MAX),
                u("CPUShares", 512),
                u("TasksMax", u64::MAX),
                u("BlockIOWeight", 300),
                // 12345 µs per 100 ms is 123450 µs per second, rounded up to whole percents.
                u("CPUQuotaPerSecUSec", 130000),
            ]
        );
    }

    #[test]
    fn older_systemds_get_no_property_they_refuse() {
        let p = props(
            r#"{"cpu":{"quota":-1,"period":50000,"cpus":"1"}}"#,
            Version::V2,
            241,
        );
        assert_eq!(p, vec![u("CPUQuotaPerSecUSec", u64::MAX)]);
    }

    #[test]
    fn cpu_lists_become_little_endian_bitmasks() {
        assert_eq!(list_to_bits("0").unwrap(), vec![1]);
        assert_eq!(list_to_bits("9").unwrap(), vec![0, 2]);
        assert_eq!(list_to_bits("0-2,7,8").unwrap(), vec![0x87, 1]);
        assert!(list_to_bits("3-1").is_err());
        assert!(list_to_bits("x").is_err());
    }

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  7 loop\n  8 sd\n";

    fn rule(
        allow: bool,
        kind: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind: Some(kind.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    fn allow_list(p: &[Prop]) -> Vec<(String, String)> {
        let Some((_, Value::Array(_, list))) = p.iter().find(|(n, _)| n == "DeviceAllow") else {
            return vec![];
        };
        list.iter()
            .map(|e| match e {
                Value::Struct(f) => (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn deny_all_then_allows_is_a_strict_allow_list() {
        let mut rules = vec![rule(false, "a", None, None, "rwm")];
        rules.extend(resources::runc_default_rules());
        rules.push(rule(true, "b", Some(8), None, "r"));
        let p = devices(&rules, PROC_DEVICES);
        assert_eq!(p[0], prop("DevicePolicy", Value::Str("strict".into())));
        let list = allow_list(&p);
        assert_eq!(list[0], ("char-*".into(), "m".into()));
        assert_eq!(list[1], ("block-*".into(), "m".into()));
        assert!(list.contains(&("/dev/char/1:3".into(), "rwm".into())));
        assert!(list.contains(&("char-pts".into(), "rwm".into())));
        assert_eq!(list.last().unwrap(), &("block-sd".into(), "r".into()));
    }

    #[test]
    fn allow_all_is_policy_auto_and_an_exact_deny_is_dropped() {
        let p = devices(&[rule(true, "a", None, None, "rwm")], PROC_DEVICES);
        assert_eq!(p[0], prop("DevicePolicy", Value::Str("auto".into())));
        assert!(allow_list(&p).is_empty());
        let rules = [
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", Some(1), Some(5), "rwm"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ];
        assert_eq!(
            allow_list(&devices(&rules, PROC_DEVICES)),
            vec![("/dev/char/1:5".to_string(), "rwm".to_string())]
        );
    }

    #[test]
    fn what_systemd_cannot_say_sets_no_device_property() {
        // A hole in an allow-all, and a major /proc/devices does not name.
        let hole = [
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ];
        assert!(devices(&hole, PROC_DEVICES).is_empty());
        let in_wildcard = [
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), None, "rwm"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ];
        assert!(devices(&in_wildcard, "Character devices:\n  1 mem\n").is_empty());
        let unnamed = [
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(99), None, "r"),
        ];
        assert!(devices(&unnamed, PROC_DEVICES).is_empty());
    }
}
