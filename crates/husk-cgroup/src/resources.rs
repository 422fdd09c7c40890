//! `linux.resources` → the list of (controller, file, value) writes for v1 or v2, with runc's
//! conversions where the two differ. Pure, so every layout is tested without a cgroup fs; a
//! resource this host cannot apply is an error, never a silent success.

pub use husk_spec::resources::*;

/// One file write. `controller` names the v1 hierarchy (`memory`, `cpu`, ...), or `""` for the
/// cgroup2 directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

/// What `plan` produces: writes in order, and warnings for fields the kernel dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Writes {
    pub writes: Vec<Write>,
    pub warnings: Vec<String>,
    /// v1 memory: limit and memsw must be written in the order that keeps limit <= memsw;
    /// when unknown (update), the applier retries the other order.
    pub memory_pair: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// runc's shares → weight conversion (cgroup v1 [2, 262144] → v2 [1, 10000]).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's blkio weight → io.weight conversion ([10, 1000] → [1, 10000]).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

fn limit_str(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

fn device_rule_v1(r: &DeviceRule) -> String {
    let kind = r.kind.as_deref().unwrap_or("a");
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = r
        .access
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    if kind == "a" && r.major.is_none() && r.minor.is_none() {
        return format!("a *:* {access}");
    }
    format!("{kind} {}:{} {access}", num(r.major), num(r.minor))
}

/// The rules runc 1.1 appends after every container's own device rules (its
/// `specconv.AllowedDevices`; observed in `devices.list` of a runc container whose config denies
/// everything): mknod of any node, the nodes runc creates in /dev, the pty master and its slaves,
/// and /dev/net/tun. Clients count on them without saying so: podman's config denies all devices
/// and then allows only what its flags name, so without c 5:2 and c 136:* `podman run -it`
/// cannot open its pty. Appended last, they cannot be taken away by the config, as in runc.
/// (runc leaves out a node's rule when `linux.devices` redefines that path; husk keeps it, and
/// allows every `linux.devices` node besides, which runc leaves to the config's rules.)
pub fn runc_default_rules() -> Vec<DeviceRule> {
    const RULES: [(&str, Option<i64>, Option<i64>, &str); 11] = [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", Some(1), Some(3), "rwm"),    // /dev/null
        ("c", Some(1), Some(8), "rwm"),    // /dev/random
        ("c", Some(1), Some(7), "rwm"),    // /dev/full
        ("c", Some(5), Some(0), "rwm"),    // /dev/tty
        ("c", Some(1), Some(5), "rwm"),    // /dev/zero
        ("c", Some(1), Some(9), "rwm"),    // /dev/urandom
        ("c", Some(136), None, "rwm"),     // /dev/pts/*
        ("c", Some(5), Some(2), "rwm"),    // /dev/ptmx
        ("c", Some(10), Some(200), "rwm"), // /dev/net/tun
    ];
    RULES
        .iter()
        .map(|&(kind, major, minor, access)| DeviceRule {
            allow: true,
            kind: Some(kind.into()),
            major,
            minor,
            access: Some(access.into()),
        })
        .collect()
}

/// The kernel's bounds on CFS bandwidth (kernel/sched/core.c: a period of 1 ms to 1 s, a quota
/// of at least 1 ms), checked by field here rather than met as EINVAL from a cgroup file.
fn check_cfs_bandwidth(c: &Cpu) -> Result<(), String> {
    if let Some(p) = c.period.filter(|p| *p > 0)
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(format!(
            "cpu.period {p}: the kernel takes 1000 to 1000000 µs (1 ms to 1 s)"
        ));
    }
    if let Some(q) = c.quota.filter(|q| (1..1000).contains(q)) {
        let period = c.period.filter(|p| *p > 0).unwrap_or(100_000);
        return Err(format!(
            "cpu.quota {q}: the kernel takes at least 1000 µs (1 ms) per period; with a period of \
             {period} µs that is {} CPUs at the least (--cpus)",
            1000.0 / period as f64
        ));
    }
    Ok(())
}

/// A hugetlb page size as the kernel names its files (`hugetlb.2MB.max`): digits and KB, MB or
/// GB. It becomes part of a file name, so nothing else may pass.
fn check_page_size(size: &str) -> Result<(), &'static str> {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    let number_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if number_ok && matches!(unit, "KB" | "MB" | "GB") {
        Ok(())
    } else {
        Err("want a size like 64KB, 2MB or 1GB")
    }
}

/// A `unified` key names a file in the container's cgroup2 directory, never anything beside it.
pub fn check_unified_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.contains('/') || k.starts_with('.') || k.contains('\0') {
        return Err(format!("unified: \"{k}\" is not a cgroup file name"));
    }
    Ok(())
}

/// Plans the writes. `extra_devices` are the container's device nodes (type, major, minor),
/// which it may always use: allowed after the rules (runc 1.1 leaves `linux.devices` to the
/// config's rules; docker and podman write one for each `--device`).
pub fn plan(
    res: &Resources,
    v: Version,
    extra_devices: &[(char, i64, i64)],
) -> Result<Writes, String> {
    let mut out = Writes::default();
    if let Some(m) = &res.memory {
        if m.kernel.is_some() || m.kernel_tcp.is_some() {
            out.warnings.push("memory.kernel and memory.kernelTCP are ignored: the kernel no longer supports them".into());
        }
        match v {
            Version::V1 => {
                out.memory_pair = m.swap.is_some() && m.limit.is_some();
                memory_v1(m, &mut out.writes)?
            }
            Version::V2 => memory_v2(m, &mut out.writes)?,
        }
    }
    let ws = &mut out.writes;
    if let Some(c) = &res.cpu {
        check_cfs_bandwidth(c)?;
        match v {
            Version::V1 => cpu_v1(c, ws),
            Version::V2 => cpu_v2(c, ws)?,
        }
    }
    if let Some(limit) = res.pids.as_ref().and_then(|p| p.limit) {
        // Negative is unlimited; 0 is taken literally (runtime-spec 1.3 and runc 1.4; runc 1.1
        // skipped 0 and crun writes max for it).
        let value = limit_str(limit);
        ws.push(match v {
            Version::V1 => w("pids", "pids.max", value),
            Version::V2 => w("", "pids.max", value),
        });
    }
    if let Some(b) = &res.block_io {
        match v {
            Version::V1 => block_io_v1(b, ws),
            Version::V2 => block_io_v2(b, ws)?,
        }
    }
    other(res, v, ws)?;
    if v == Version::V1 && !res.devices.is_empty() {
        devices_v1(&res.devices, extra_devices, ws);
    }
    Ok(out)
}

fn memory_v1(m: &Memory, ws: &mut Vec<Write>) -> Result<(), String> {
    if let Some(l) = m.limit {
        ws.push(w("memory", "memory.limit_in_bytes", l));
    }
    if let Some(s) = m.swap {
        ws.push(w("memory", "memory.memsw.limit_in_bytes", s));
    }
    if let Some(r) = m.reservation {
        ws.push(w("memory", "memory.soft_limit_in_bytes", r));
    }
    if let Some(s) = m.swappiness {
        if s > 100 {
            return Err(format!("memory.swappiness: {s} is above 100"));
        }
        ws.push(w("memory", "memory.swappiness", s));
    }
    if let Some(d) = m.disable_oom_killer {
        ws.push(w("memory", "memory.oom_control", u8::from(d)));
    }
    if let Some(h) = m.use_hierarchy {
        ws.push(w("memory", "memory.use_hierarchy", u8::from(h)));
    }
    Ok(())
}

fn memory_v2(m: &Memory, ws: &mut Vec<Write>) -> Result<(), String> {
    if let Some(l) = m.limit {
        ws.push(w("", "memory.max", limit_str(l)));
    }
    // v1's swap is memory+swap; v2's swap.max is swap alone (runc's conversion).
    if let Some(s) = m.swap {
        let value = match (s, m.limit) {
            (s, _) if s < 0 => "max".to_string(),
            (s, Some(l)) if l >= 0 => {
                if s < l {
                    return Err(format!(
                        "memory.swap ({s}) is below memory.limit ({l}): swap includes memory"
                    ));
                }
                (s - l).to_string()
            }
            (_, _) => return Err("memory.swap needs memory.limit on cgroup v2".into()),
        };
        ws.push(w("", "memory.swap.max", value));
    }
    if let Some(r) = m.reservation {
        ws.push(w("", "memory.low", limit_str(r)));
    }
    if matches!(m.swappiness, Some(s) if s != 60) {
        return Err("memory.swappiness: cgroup v2 has no per-cgroup swappiness".into());
    }
    if m.disable_oom_killer == Some(true) {
        return Err("memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer".into());
    }
    Ok(())
}

fn cpu_v1(c: &Cpu, ws: &mut Vec<Write>) {
    if let Some(s) = c.shares.filter(|s| *s > 0) {
        ws.push(w("cpu", "cpu.shares", s));
    }
    // Period before quota: the kernel checks quota against the current period.
    if let Some(p) = c.period.filter(|p| *p > 0) {
        ws.push(w("cpu", "cpu.cfs_period_us", p));
    }
    if let Some(q) = c.quota.filter(|q| *q != 0) {
        ws.push(w("cpu", "cpu.cfs_quota_us", q));
    }
    if let Some(b) = c.burst {
        ws.push(w("cpu", "cpu.cfs_burst_us", b));
    }
    if let Some(p) = c.realtime_period.filter(|p| *p > 0) {
        ws.push(w("cpu", "cpu.rt_period_us", p));
    }
    if let Some(r) = c.realtime_runtime.filter(|r| *r != 0) {
        ws.push(w("cpu", "cpu.rt_runtime_us", r));
    }
    if let Some(i) = c.idle {
        ws.push(w("cpu", "cpu.idle", i));
    }
    if let Some(s) = c.cpus.as_ref().filter(|s| !s.is_empty()) {
        ws.push(w("cpuset", "cpuset.cpus", s));
    }
    if let Some(s) = c.mems.as_ref().filter(|s| !s.is_empty()) {
        ws.push(w("cpuset", "cpuset.mems", s));
    }
}

fn cpu_v2(c: &Cpu, ws: &mut Vec<Write>) -> Result<(), String> {
    if let Some(s) = c.shares.filter(|s| *s > 0) {
        ws.push(w("", "cpu.weight", shares_to_weight(s)));
    }
    if c.quota.is_some() || c.period.is_some() {
        let period = c.period.filter(|p| *p > 0).unwrap_or(100_000);
        let quota = c
            .quota
            .filter(|q| *q > 0)
            .map_or("max".to_string(), |q| q.to_string());
        ws.push(w("", "cpu.max", format!("{quota} {period}")));
    }
    if let Some(b) = c.burst {
        ws.push(w("", "cpu.max.burst", b));
    }
    if c.realtime_runtime.is_some_and(|r| r != 0) || c.realtime_period.is_some_and(|p| p != 0) {
        return Err(
            "cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime group scheduling".into(),
        );
    }
    if let Some(i) = c.idle {
        ws.push(w("", "cpu.idle", i));
    }
    if let Some(s) = c.cpus.as_ref().filter(|s| !s.is_empty()) {
        ws.push(w("", "cpuset.cpus", s));
    }
    if let Some(s) = c.mems.as_ref().filter(|s| !s.is_empty()) {
        ws.push(w("", "cpuset.mems", s));
    }
    Ok(())
}

fn block_io_v1(b: &BlockIo, ws: &mut Vec<Write>) {
    if let Some(x) = b.weight.filter(|x| *x > 0) {
        ws.push(w("blkio", "blkio.weight", x));
    }
    if let Some(x) = b.leaf_weight.filter(|x| *x > 0) {
        ws.push(w("blkio", "blkio.leaf_weight", x));
    }
    for d in &b.weight_device {
        if let Some(x) = d.weight {
            ws.push(w(
                "blkio",
                "blkio.weight_device",
                format!("{}:{} {x}", d.major, d.minor),
            ));
        }
        if let Some(x) = d.leaf_weight {
            ws.push(w(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{}:{} {x}", d.major, d.minor),
            ));
        }
    }
    for (list, file) in [
        (
            &b.throttle_read_bps_device,
            "blkio.throttle.read_bps_device",
        ),
        (
            &b.throttle_write_bps_device,
            "blkio.throttle.write_bps_device",
        ),
        (
            &b.throttle_read_iops_device,
            "blkio.throttle.read_iops_device",
        ),
        (
            &b.throttle_write_iops_device,
            "blkio.throttle.write_iops_device",
        ),
    ] {
        for d in list {
            ws.push(w(
                "blkio",
                file,
                format!("{}:{} {}", d.major, d.minor, d.rate),
            ));
        }
    }
}

fn block_io_v2(b: &BlockIo, ws: &mut Vec<Write>) -> Result<(), String> {
    if let Some(x) = b.weight.filter(|x| *x > 0) {
        // io.bfq.weight takes the blkio range as is; the applier falls back to
        // io.weight (converted) when BFQ is not in use.
        ws.push(w("", "io.bfq.weight", x));
    }
    if b.leaf_weight.is_some_and(|x| x > 0) {
        return Err("blockIO.leafWeight: cgroup v2 has no leaf weight".into());
    }
    for d in &b.weight_device {
        if let Some(x) = d.weight {
            ws.push(w(
                "",
                "io.bfq.weight",
                format!("{}:{} {x}", d.major, d.minor),
            ));
        }
    }
    for (list, key) in [
        (&b.throttle_read_bps_device, "rbps"),
        (&b.throttle_write_bps_device, "wbps"),
        (&b.throttle_read_iops_device, "riops"),
        (&b.throttle_write_iops_device, "wiops"),
    ] {
        for d in list {
            ws.push(w(
                "",
                "io.max",
                format!("{}:{} {key}={}", d.major, d.minor, d.rate),
            ));
        }
    }
    Ok(())
}

/// v1's device rules, runc's defaults already appended by the caller, then the container's nodes.
fn devices_v1(rules: &[DeviceRule], extra_devices: &[(char, i64, i64)], ws: &mut Vec<Write>) {
    for r in rules {
        ws.push(w(
            "devices",
            if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            device_rule_v1(r),
        ));
    }
    for (kind, major, minor) in extra_devices {
        ws.push(w(
            "devices",
            "devices.allow",
            format!("{kind} {major}:{minor} rwm"),
        ));
    }
}

/// hugetlb, net_cls/net_prio, rdma and `unified`: one file each, the same shape on v1 and v2.
fn other(res: &Resources, v: Version, ws: &mut Vec<Write>) -> Result<(), String> {
    for (i, h) in res.hugepage_limits.iter().enumerate() {
        check_page_size(&h.page_size)
            .map_err(|why| format!("hugepageLimits[{i}].pageSize \"{}\": {why}", h.page_size))?;
        match v {
            Version::V1 => ws.push(w(
                "hugetlb",
                format!("hugetlb.{}.limit_in_bytes", h.page_size),
                h.limit,
            )),
            Version::V2 => ws.push(w("", format!("hugetlb.{}.max", h.page_size), h.limit)),
        }
    }
    if let Some(n) = &res.network {
        if v == Version::V2 && (n.class_id.is_some() || !n.priorities.is_empty()) {
            return Err("network.classID/priorities: cgroup v2 has no net_cls or net_prio".into());
        }
        if let Some(c) = n.class_id {
            ws.push(w("net_cls", "net_cls.classid", c));
        }
        for p in &n.priorities {
            ws.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name, p.priority),
            ));
        }
    }
    for (dev, r) in &res.rdma {
        let mut parts = vec![dev.clone()];
        if let Some(h) = r.hca_handles {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects {
            parts.push(format!("hca_object={o}"));
        }
        ws.push(w(
            if v == Version::V1 { "rdma" } else { "" },
            "rdma.max",
            parts.join(" "),
        ));
    }
    if !res.unified.is_empty() {
        if v == Version::V1 {
            return Err("unified: needs cgroup v2 (this host has v1 controllers)".into());
        }
        for (k, val) in &res.unified {
            check_unified_key(k)?;
            ws.push(w("", k.clone(), val));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Resources {
        serde_json::from_str(json).unwrap()
    }

    fn files(ws: &Writes) -> Vec<(&str, &str, &str)> {
        ws.writes
            .iter()
            .map(|w| (w.controller, w.file.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn runc_default_rules_as_v1_lines() {
        let mut res = Resources {
            devices: serde_json::from_str(r#"[{"allow":false,"access":"rwm"}]"#).unwrap(),
            ..Default::default()
        };
        res.devices.extend(runc_default_rules());
        let ws = plan(&res, Version::V1, &[]).unwrap();
        let lines: Vec<String> = files(&ws)
            .iter()
            .map(|(_, f, v)| format!("{f} {v}"))
            .collect();
        assert_eq!(
            lines,
            [
                "devices.deny a *:* rwm",
                "devices.allow c *:* m",
                "devices.allow b *:* m",
                "devices.allow c 1:3 rwm",
                "devices.allow c 1:8 rwm",
                "devices.allow c 1:7 rwm",
                "devices.allow c 5:0 rwm",
                "devices.allow c 1:5 rwm",
                "devices.allow c 1:9 rwm",
                "devices.allow c 136:* rwm",
                "devices.allow c 5:2 rwm",
                "devices.allow c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn memory_v1_and_v2() {
        let r = parse(
            r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800,"swappiness":10,"kernel":1}}"#,
        );
        let v1 = plan(&r, Version::V1, &[]).unwrap();
        assert_eq!(
            files(&v1),
            vec![
                ("memory", "memory.limit_in_bytes", "104857600"),
                ("memory", "memory.memsw.limit_in_bytes", "209715200"),
                ("memory", "memory.soft_limit_in_bytes", "52428800"),
                ("memory", "memory.swappiness", "10"),
            ]
        );
        assert!(v1.memory_pair);
        assert_eq!(v1.warnings.len(), 1);
        let r2 = parse(r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800}}"#);
        assert_eq!(
            files(&plan(&r2, Version::V2, &[]).unwrap()),
            vec![
                ("", "memory.max", "104857600"),
                ("", "memory.swap.max", "104857600"),
                ("", "memory.low", "52428800")
            ]
        );
        assert!(
            plan(&r, Version::V2, &[]).is_err(),
            "swappiness has no v2 file"
        );
        let unlimited = parse(r#"{"memory":{"limit":-1,"swap":-1}}"#);
        assert_eq!(
            files(&plan(&unlimited, Version::V2, &[]).unwrap()),
            vec![("", "memory.max", "max"), ("", "memory.swap.max", "max")]
        );
    }

    #[test]
    fn cpu_v1_and_v2() {
        let r =
            parse(r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0","mems":"0"}}"#);
        assert_eq!(
            files(&plan(&r, Version::V1, &[]).unwrap()),
            vec![
                ("cpu", "cpu.shares", "1024"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("cpuset", "cpuset.cpus", "0"),
                ("cpuset", "cpuset.mems", "0"),
            ]
        );
        assert_eq!(
            files(&plan(&r, Version::V2, &[]).unwrap()),
            vec![
                ("", "cpu.weight", "39"),
                ("", "cpu.max", "50000 100000"),
                ("", "cpuset.cpus", "0"),
                ("", "cpuset.mems", "0")
            ]
        );
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        let rt = parse(r#"{"cpu":{"realtimeRuntime":1000,"realtimePeriod":10000}}"#);
        assert!(plan(&rt, Version::V2, &[]).is_err());
        assert_eq!(
            files(&plan(&rt, Version::V1, &[]).unwrap()),
            vec![
                ("cpu", "cpu.rt_period_us", "10000"),
                ("cpu", "cpu.rt_runtime_us", "1000")
            ]
        );
    }

    #[test]
    fn pids_meanings() {
        for (limit, want) in [(20, "20"), (-1, "max"), (0, "0")] {
            let r = parse(&format!(r#"{{"pids":{{"limit":{limit}}}}}"#));
            assert_eq!(
                files(&plan(&r, Version::V1, &[]).unwrap()),
                vec![("pids", "pids.max", want)]
            );
            assert_eq!(
                files(&plan(&r, Version::V2, &[]).unwrap()),
                vec![("", "pids.max", want)]
            );
        }
        // An object without a limit touches nothing (it used to write 0: no fork at all).
        let r = parse(r#"{"pids":{}}"#);
        assert!(files(&plan(&r, Version::V1, &[]).unwrap()).is_empty());
        assert!(files(&plan(&r, Version::V2, &[]).unwrap()).is_empty());
    }

    #[test]
    fn blkio_hugetlb_network_rdma_unified() {
        let r = parse(
            r#"{"blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"rdma":{"mlx5_1":{"hcaHandles":3}}}"#,
        );
        assert_eq!(
            files(&plan(&r, Version::V1, &[]).unwrap()),
            vec![
                ("blkio", "blkio.weight", "500"),
                ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                ("rdma", "rdma.max", "mlx5_1 hca_handle=3"),
            ]
        );
        assert_eq!(
            files(&plan(&r, Version::V2, &[]).unwrap()),
            vec![
                ("", "io.bfq.weight", "500"),
                ("", "io.max", "8:0 rbps=1048576"),
                ("", "hugetlb.2MB.max", "4194304"),
                ("", "rdma.max", "mlx5_1 hca_handle=3")
            ]
        );
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        let net =
            parse(r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}}"#);
        assert_eq!(
            files(&plan(&net, Version::V1, &[]).unwrap()),
            vec![
                ("net_cls", "net_cls.classid", "1048577"),
                ("net_prio", "net_prio.ifpriomap", "eth0 5")
            ]
        );
        assert!(plan(&net, Version::V2, &[]).is_err());
        let uni = parse(r#"{"unified":{"memory.high":"1000000"}}"#);
        assert!(plan(&uni, Version::V1, &[]).is_err());
        assert_eq!(
            files(&plan(&uni, Version::V2, &[]).unwrap()),
            vec![("", "memory.high", "1000000")]
        );
        assert!(plan(&parse(r#"{"unified":{"../x":"1"}}"#), Version::V2, &[]).is_err());
        assert!(plan(&parse(r#"{"unified":{"":"1"}}"#), Version::V2, &[]).is_err());
    }

    /// Quotas and periods the kernel would refuse with EINVAL are refused by field, with the
    /// bounds (`--cpus 0.001` was a bare "Invalid argument (os error 22)").
    #[test]
    fn cfs_bandwidth_bounds() {
        for v in [Version::V1, Version::V2] {
            let e = plan(&parse(r#"{"cpu":{"quota":100,"period":100000}}"#), v, &[]).unwrap_err();
            assert_eq!(
                e,
                "cpu.quota 100: the kernel takes at least 1000 µs (1 ms) per period; with a period \
                 of 100000 µs that is 0.01 CPUs at the least (--cpus)"
            );
            for p in [999, 1_000_001] {
                let e =
                    plan(&parse(&format!(r#"{{"cpu":{{"period":{p}}}}}"#)), v, &[]).unwrap_err();
                assert!(
                    e.starts_with(&format!("cpu.period {p}: the kernel takes 1000 to 1000000")),
                    "{e}"
                );
            }
            for ok in [
                r#"{"quota":1000,"period":1000}"#,
                r#"{"quota":-1,"period":1000000}"#,
                r#"{"quota":0}"#,
            ] {
                assert!(
                    plan(&parse(&format!(r#"{{"cpu":{ok}}}"#)), v, &[]).is_ok(),
                    "{ok}"
                );
            }
        }
    }

    /// The page size becomes part of a file name: only the kernel's own spellings pass.
    #[test]
    fn hugepage_sizes_are_checked() {
        for ok in ["2MB", "1GB", "64KB", "16GB", "512KB"] {
            let r = parse(&format!(
                r#"{{"hugepageLimits":[{{"pageSize":"{ok}","limit":1}}]}}"#
            ));
            assert!(plan(&r, Version::V1, &[]).is_ok(), "{ok}");
            assert!(plan(&r, Version::V2, &[]).is_ok(), "{ok}");
        }
        for bad in [
            "../../../tmp/x",
            "2MB/../x",
            "..",
            "2mb",
            "2M",
            "MB",
            "02MB",
            "",
            "2 MB",
            "2MB.max",
        ] {
            let r = parse(&format!(
                r#"{{"hugepageLimits":[{{"pageSize":"2MB","limit":1}},{{"pageSize":"{bad}","limit":1}}]}}"#
            ));
            for v in [Version::V1, Version::V2] {
                let e = plan(&r, v, &[]).unwrap_err();
                assert!(
                    e.starts_with(&format!(
                        "hugepageLimits[1].pageSize \"{bad}\": want a size like"
                    )),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn devices_v1() {
        let r = parse(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},{"allow":true,"type":"c","major":136,"access":"rwm"}]}"#,
        );
        assert_eq!(
            files(&plan(&r, Version::V1, &[('c', 10, 200)]).unwrap()),
            vec![
                ("devices", "devices.deny", "a *:* rwm"),
                ("devices", "devices.allow", "c 1:3 rw"),
                ("devices", "devices.allow", "c 136:* rwm"),
                ("devices", "devices.allow", "c 10:200 rwm"),
            ]
        );
    }
}
