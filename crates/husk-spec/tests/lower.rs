//! Golden cases for config → plan, and the field names bad configs report.

use husk_spec::mountopt::ms;
use husk_spec::names::NsKind;
use husk_spec::{defaults::default_spec, lower, parse_config};
use std::path::{Path, PathBuf};

fn lower_json(json: &str) -> Result<husk_spec::Plan, String> {
    let spec = parse_config(json).map_err(|e| e.to_string())?;
    lower(&spec, Path::new("/b")).map_err(|e| e.to_string())
}

fn base(extra: &str) -> String {
    format!(
        r#"{{"ociVersion":"1.3.0","root":{{"path":"rootfs"}},"process":{{"args":["sh"],"cwd":"/"}}{extra}}}"#
    )
}

#[test]
fn default_spec_lowers() {
    let plan = lower(&default_spec(), Path::new("/bundle")).unwrap();
    assert_eq!(plan.rootfs, PathBuf::from("/bundle/rootfs"));
    assert!(plan.rootfs_readonly);
    assert!(plan.creates(NsKind::Pid) && plan.creates(NsKind::Mount) && plan.creates(NsKind::Net));
    assert!(!plan.has(NsKind::User));
    assert_eq!(plan.mounts.len(), 7);
    assert_eq!(plan.mounts[1].dest, PathBuf::from("dev"));
    assert_eq!(plan.mounts[1].opts.data, "mode=755,size=65536k");
    assert!(plan.setup_dev);
    assert_eq!(plan.devices.len(), 6);
    let caps = plan.process.caps.unwrap();
    assert_eq!(caps.inheritable, 0);
    assert_eq!(caps.bounding, caps.permitted);
    assert_eq!(caps.bounding.count_ones(), 14);
    assert_eq!(plan.rootfs_propagation, ms::SLAVE | ms::REC);
    assert_eq!(plan.process.rlimits[0].resource, 7);
    // The spec round-trips through JSON unchanged.
    let json = serde_json::to_string(&default_spec()).unwrap();
    assert_eq!(parse_config(&json).unwrap(), default_spec());
}

#[test]
fn absolute_root_and_relative_bind_source() {
    let p = lower_json(
        r#"{"root":{"path":"/abs"},"process":{"args":["x"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]},
            "mounts":[{"destination":"/../../etc/x","type":"bind","source":"data","options":["ro"]}]}"#,
    )
    .unwrap();
    assert_eq!(p.rootfs, PathBuf::from("/abs"));
    assert_eq!(p.mounts[0].dest, PathBuf::from("etc/x"));
    assert_eq!(p.mounts[0].source, Some(PathBuf::from("/b/data")));
    assert_eq!(p.mounts[0].fstype, "bind");
}

#[test]
fn joins_and_creates() {
    let p = lower_json(&base(
        r#","linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}]}"#,
    ))
    .unwrap();
    assert!(p.creates(NsKind::Pid));
    assert!(!p.creates(NsKind::Net));
    assert!(p.has(NsKind::Net));
    assert_eq!(p.clone_flags(), NsKind::Pid.clone_flag());
}

/// A pod's sysctls in a container that joins the pause's namespaces by path (runc's rule: a
/// namespace of the kind, made or joined); whether a joined one is the host's is seen at create.
#[test]
fn sysctls_in_joined_namespaces_lower() {
    let p = lower_json(&base(
        r#","linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/run/netns/pod"},
        {"type":"ipc","path":"/proc/7/ns/ipc"}],
        "sysctl":{"net.ipv4.ip_unprivileged_port_start":"0","kernel.shm_rmid_forced":"1"}}"#,
    ))
    .unwrap();
    assert_eq!(p.sysctl.len(), 2);
}

#[test]
fn bad_configs_name_their_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"process":{"args":["x"],"cwd":"/"}}"#, "root: missing"),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","env":["A=1","NOEQUALS"]}}"#,
            "process.env: \"NOEQUALS\" is not KEY=VALUE",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","env":["=x"]}}"#,
            "process.env: \"=x\" is not KEY=VALUE",
        ),
        (
            &base(r#","linux":{"namespaces":[{"type":"bogus"}]}"#),
            "linux.namespaces[0].type: unknown namespace \"bogus\"",
        ),
        (
            &base(r#","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#),
            "linux.namespaces[1].type",
        ),
        (
            &base(r#","linux":{"namespaces":[{"type":"user"}]}"#),
            "linux.uidMappings",
        ),
        (
            &base(r#","hostname":"h""#),
            "hostname: set without a uts namespace",
        ),
        (
            &base(r#","linux":{"sysctl":{"kernel.pid_max":"1"}}"#),
            "linux.sysctl.kernel.pid_max: not namespaced",
        ),
        (
            &base(r#","linux":{"sysctl":{"net.ipv4.ip_forward":"1"}}"#),
            "linux.sysctl.net.ipv4.ip_forward: needs a network namespace",
        ),
        (
            &base(r#","mounts":[{"destination":"/x","options":["bind"]}]"#),
            "mounts[0].source",
        ),
        (
            &base(r#","mounts":[{"destination":"/x","source":"none"}]"#),
            "mounts[0].type",
        ),
        (
            &base(r#","linux":{"devices":[{"type":"z","path":"/dev/z"}]}"#),
            "linux.devices[0].type",
        ),
        (
            &base(r#","linux":{"rootfsPropagation":"sideways"}"#),
            "linux.rootfsPropagation",
        ),
        (
            &base(r#","hooks":{"poststart":[{"path":"rel"}]}"#),
            "hooks.poststart[0].path: must be absolute",
        ),
        (
            &base(r#","linux":{"cgroupsPath":"/a/../b"}"#),
            "linux.cgroupsPath",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":[],"cwd":"/"}}"#,
            "process.args",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"rel"}}"#,
            "process.cwd",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","capabilities":{"bounding":["CAP_NOPE"]}}}"#,
            "process.capabilities.bounding[0]: unknown capability \"CAP_NOPE\"",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","rlimits":[{"type":"RLIMIT_X","hard":1,"soft":1}]}}"#,
            "process.rlimits[0].type",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":2}]}}"#,
            "process.rlimits[0]: soft limit above hard limit",
        ),
        (
            r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","oomScoreAdj":5000}}"#,
            "process.oomScoreAdj",
        ),
        (r#"{"root":7}"#, "config.json: invalid type"),
    ];
    for (json, want) in cases {
        let got = lower_json(json).expect_err(json);
        assert!(
            got.starts_with(want),
            "config {json}\n  got:  {got}\n  want: {want}…"
        );
    }
}

#[test]
fn devices_override_defaults_and_bind_dev_skips_setup() {
    let p = lower_json(&base(r#","linux":{"devices":[{"type":"c","path":"/dev/null","major":1,"minor":3,"fileMode":438},{"type":"c","path":"/dev/net/tun","major":10,"minor":200}]}"#)).unwrap();
    assert_eq!(p.devices.len(), 7);
    assert_eq!(
        p.devices
            .iter()
            .filter(|d| d.path == Path::new("dev/null"))
            .count(),
        1
    );
    let p = lower_json(&base(
        r#","linux":{"namespaces":[{"type":"mount"}]},"mounts":[{"destination":"/dev","type":"bind","source":"/dev","options":["rbind"]}]"#,
    ))
    .unwrap();
    assert!(!p.setup_dev);
    assert!(p.devices.is_empty());
}

#[test]
fn process_fields() {
    let p = lower_json(
        r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/w","user":{"uid":1,"gid":2,"umask":63,"additionalGids":[5]},
            "scheduler":{"policy":"SCHED_BATCH","nice":3},"ioPriority":{"class":"IOPRIO_CLASS_BE","priority":4},
            "execCPUAffinity":{"initial":"0","final":"0-1"}},
            "linux":{"personality":{"domain":"LINUX32"},"memoryPolicy":{"mode":"MPOL_BIND","nodes":"0"}}}"#,
    )
    .unwrap();
    assert_eq!(
        (p.process.uid, p.process.gid, p.process.umask),
        (1, 2, Some(63))
    );
    assert_eq!(p.process.additional_gids, vec![5]);
    assert_eq!(p.process.scheduler.unwrap().policy, 3);
    assert_eq!(p.process.io_priority, Some((2, 4)));
    assert_eq!(p.process.cpu_affinity_initial, Some(vec![0]));
    assert_eq!(p.process.cpu_affinity_final, Some(vec![0, 1]));
    assert_eq!(p.personality, Some(8));
    assert_eq!(p.mem_policy.unwrap().nodes, vec![0]);
}

#[test]
fn cpu_lists() {
    use husk_spec::plan::parse_cpu_list;
    assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
    assert_eq!(parse_cpu_list("3-1"), None);
    assert_eq!(parse_cpu_list("x"), None);
}

#[test]
fn ambient_outside_inheritable_is_ignored_as_runc_does() {
    // `runc spec`'s capabilities: ambient = permitted, no inheritable set at all.
    let three = r#"["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]"#;
    let p = lower_json(&format!(
        r#"{{"root":{{"path":"r"}},"process":{{"args":["x"],"cwd":"/","capabilities":{{
            "bounding":{three},"effective":{three},"permitted":{three},"ambient":{three}}}}}}}"#
    ))
    .unwrap();
    let caps = p.process.caps.unwrap();
    assert_eq!(caps.ambient, 0);
    assert_eq!(caps.ambient_ignored, 1 << 5 | 1 << 10 | 1 << 29);
    // Within inheritable and permitted it is raised; outside permitted it is ignored too.
    let p = lower_json(
        r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","capabilities":{
            "permitted":["CAP_KILL"],"inheritable":["CAP_KILL","CAP_CHOWN"],
            "ambient":["CAP_KILL","CAP_CHOWN"]}}}"#,
    )
    .unwrap();
    let caps = p.process.caps.unwrap();
    assert_eq!((caps.ambient, caps.ambient_ignored), (1 << 5, 1 << 0));
}

#[test]
fn ids_past_runcs_range_name_their_field() {
    let user = |u: &str| {
        lower_json(&format!(
            r#"{{"root":{{"path":"r"}},"process":{{"args":["x"],"cwd":"/","user":{u}}}}}"#
        ))
    };
    for (u, want) in [
        (
            r#"{"uid":4294967295,"gid":0}"#,
            "process.user.uid: 4294967295 is outside 0..=2147483647",
        ),
        (
            r#"{"uid":0,"gid":2147483648}"#,
            "process.user.gid: 2147483648",
        ),
        (
            r#"{"uid":0,"gid":0,"additionalGids":[1,4294967295]}"#,
            "process.user.additionalGids[1]: 4294967295",
        ),
    ] {
        let e = user(u).unwrap_err();
        assert!(e.starts_with(want), "{e}");
    }
    let p = user(r#"{"uid":2147483647,"gid":0,"additionalGids":[7,5,5,7]}"#).unwrap();
    assert_eq!(p.process.uid, 2147483647);
    assert_eq!(p.process.additional_gids, vec![7, 5]);
    let e = lower_json(&base(
        r#","linux":{"devices":[{"type":"c","path":"/dev/x","major":1,"minor":3,"uid":4294967295}]}"#,
    ))
    .unwrap_err();
    assert!(e.starts_with("linux.devices[0].uid: 4294967295"), "{e}");
    let userns = |maps: &str| {
        lower_json(&base(&format!(
            r#","linux":{{"namespaces":[{{"type":"user"}}],"uidMappings":{maps},"gidMappings":[{{"containerID":0,"hostID":1000,"size":1}}]}}"#
        )))
    };
    userns(r#"[{"containerID":0,"hostID":0,"size":4294967295}]"#).unwrap();
    for maps in [
        r#"[{"containerID":0,"hostID":1000,"size":0}]"#,
        r#"[{"containerID":1,"hostID":0,"size":4294967295}]"#,
        r#"[{"containerID":0,"hostID":4294967295,"size":1}]"#,
    ] {
        let e = userns(maps).unwrap_err();
        assert!(e.starts_with("linux.uidMappings[0]: containerID"), "{e}");
    }
}

#[test]
fn without_a_mount_namespace_nothing_may_need_mounting() {
    // The chroot case runc runs: no mounts, masks, read-only paths or read-only root.
    let p = lower_json(&base("")).unwrap();
    assert!(!p.has(NsKind::Mount));
    let cases: &[(&str, &str)] = &[
        (
            r#","linux":{"maskedPaths":["/proc/kcore"]}"#,
            "linux.maskedPaths: needs a mount namespace",
        ),
        (
            r#","linux":{"readonlyPaths":["/proc/sys"]}"#,
            "linux.readonlyPaths: needs a mount namespace",
        ),
        (
            r#","mounts":[{"destination":"/proc","type":"proc","source":"proc"}]"#,
            "mounts[0] (/proc): needs a mount namespace",
        ),
    ];
    for (extra, want) in cases {
        let e = lower_json(&base(extra)).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let e =
        lower_json(r#"{"root":{"path":"r","readonly":true},"process":{"args":["sh"],"cwd":"/"}}"#)
            .unwrap_err();
    assert!(e.contains("root.readonly: needs a mount namespace"), "{e}");
    // Joined by path is a mount namespace too: the rootfs is set up there, as runc does.
    let joined = r#","linux":{"namespaces":[{"type":"mount","path":"/proc/1/ns/mnt"}],"maskedPaths":["/proc/kcore"]},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"}]"#;
    assert!(lower_json(&base(joined)).is_ok());
    // A hostname needs a uts namespace, joined or new.
    let uts = r#","hostname":"h","domainname":"d","linux":{"namespaces":[{"type":"uts","path":"/proc/1/ns/uts"}]}"#;
    let p = lower_json(&base(uts)).unwrap();
    assert_eq!(
        (p.hostname.as_deref(), p.domainname.as_deref()),
        (Some("h"), Some("d"))
    );
    let e = lower_json(&base(r#","domainname":"d""#)).unwrap_err();
    assert!(e.contains("domainname: set without a uts namespace"), "{e}");
}

#[test]
fn mount_label_goes_on_the_mounts_that_take_it() {
    let mut spec = default_spec();
    spec.mounts.push(husk_spec::config::Mount {
        destination: "/data".into(),
        kind: Some("bind".into()),
        source: Some("/srv".into()),
        options: vec!["rbind".into()],
        ..Default::default()
    });
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    spec.linux.as_mut().unwrap().mount_label = Some(label.into());
    let plan = lower(&spec, Path::new("/bundle")).unwrap();
    assert_eq!(plan.mount_label.as_deref(), Some(label));
    let ctx = format!("context=\"{label}\"");
    let data = |dest: &str| {
        let m = plan
            .mounts
            .iter()
            .find(|m| m.dest == Path::new(dest))
            .unwrap();
        m.opts.data.clone()
    };
    // runc's set: every mount but proc, sysfs, binds, cgroups and mqueue.
    assert_eq!(data("dev"), format!("mode=755,size=65536k,{ctx}"));
    assert!(
        data("dev/pts").ends_with(&format!(",{ctx}")),
        "{}",
        data("dev/pts")
    );
    assert!(data("dev/shm").ends_with(&ctx));
    // mqueue gets the label as an xattr after mounting (its superblock predates the mount).
    assert_eq!(data("dev/mqueue"), "");
    for plain in ["proc", "sys", "sys/fs/cgroup", "data"] {
        assert!(
            !data(plain).contains("context="),
            "{plain}: {}",
            data(plain)
        );
    }
    // Without a label nothing changes.
    let plan = lower(&default_spec(), Path::new("/bundle")).unwrap();
    assert!(plan.mount_label.is_none());
    assert!(
        plan.mounts
            .iter()
            .all(|m| !m.opts.data.contains("context="))
    );
}

#[test]
fn lsm_labels_are_checked() {
    for (extra, field) in [
        (r#","linux":{"mountLabel":"a\"b"}"#, "linux.mountLabel"),
        (r#","linux":{"mountLabel":"a\nb"}"#, "linux.mountLabel"),
    ] {
        let e = lower_json(&base(extra)).unwrap_err();
        assert!(e.starts_with(field), "{e}");
    }
    let bad_process = |key: &str| {
        format!(r#"{{"root":{{"path":"r"}},"process":{{"args":["sh"],"cwd":"/","{key}":"x\ny"}}}}"#)
    };
    for key in ["apparmorProfile", "selinuxLabel"] {
        let e = lower_json(&bad_process(key)).unwrap_err();
        assert!(e.starts_with(&format!("process.{key}")), "{e}");
    }
    let p = lower_json(
        r#"{"root":{"path":"r"},"process":{"args":["sh"],"cwd":"/","apparmorProfile":"p1","selinuxLabel":""}}"#,
    )
    .unwrap();
    assert_eq!(p.process.apparmor_profile.as_deref(), Some("p1"));
    assert_eq!(p.process.selinux_label, None);
}

/// More supplementary groups than the kernel takes fail here, naming the field and the limit,
/// not as setgroups' EINVAL deep in init.
#[test]
fn more_additional_gids_than_ngroups_max_are_refused() {
    let gids = |n: u32| {
        let list: Vec<String> = (1..=n).map(|g| g.to_string()).collect();
        lower_json(&format!(
            r#"{{"root":{{"path":"r"}},"process":{{"args":["x"],"cwd":"/","user":{{"uid":0,"gid":0,"additionalGids":[{}]}}}}}}"#,
            list.join(",")
        ))
    };
    let e = gids(70_000).unwrap_err();
    assert_eq!(
        e,
        "process.user.additionalGids: 70000 groups: the kernel takes at most 65536 (NGROUPS_MAX)"
    );
    assert_eq!(gids(65_536).unwrap().process.additional_gids.len(), 65_536);
}

#[test]
fn resources_are_typed_in_the_plan() {
    let p = lower_json(&base(
        r#","linux":{"resources":{"memory":{"limit":67108864,"swap":-1},"cpu":{"shares":512,"cpus":"0-1"},
            "pids":{"limit":0},"devices":[{"allow":false,"access":"rwm"}],"unified":{"memory.high":"max"}}}"#,
    ))
    .unwrap();
    let r = p.resources.expect("resources");
    let m = r.memory.as_ref().unwrap();
    assert_eq!(
        (m.limit, m.swap, m.reservation),
        (Some(67_108_864), Some(-1), None)
    );
    let c = r.cpu.as_ref().unwrap();
    assert_eq!((c.shares, c.cpus.as_deref()), (Some(512), Some("0-1")));
    // 0 is a limit (runtime-spec 1.3), not "unset".
    assert_eq!(r.pids.as_ref().unwrap().limit, Some(0));
    assert_eq!(r.devices.len(), 1);
    assert!(!r.devices[0].allow);
    assert_eq!(r.unified["memory.high"], "max");
    assert_eq!(lower_json(&base("")).unwrap().resources, None);
}

#[test]
fn resources_of_the_wrong_type_fail_at_lowering() {
    for (res, want) in [
        (
            r#"{"memory":{"limit":"64m"}}"#,
            "invalid type: string \"64m\"",
        ),
        (r#"{"cpu":{"shares":-1}}"#, "invalid value: integer `-1`"),
        (r#"{"hugepageLimits":{}}"#, "invalid type: map"),
        (
            r#"{"blockIO":{"weight":70000}}"#,
            "invalid value: integer `70000`",
        ),
    ] {
        let e = lower_json(&base(&format!(r#","linux":{{"resources":{res}}}"#))).unwrap_err();
        assert!(e.starts_with("linux.resources: "), "{res}: {e}");
        assert!(e.contains(want), "{res}: {e}");
    }
}

#[test]
fn annotations_process_and_seccomp_are_recorded_as_written() {
    let seccomp = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let json = base(&format!(
        r#","annotations":{{"org.example/a":"1","b":""}},"linux":{{"seccomp":{seccomp}}}"#
    ));
    let p = lower_json(&json).unwrap();
    let spec = parse_config(&json).unwrap();
    assert_eq!(p.record.annotations, spec.annotations);
    assert_eq!(p.record.annotations["org.example/a"], "1");
    assert_eq!(p.record.process, spec.process);
    let raw: serde_json::Value = serde_json::from_str(seccomp).unwrap();
    assert_eq!(p.record.seccomp, Some(raw));
    // The filter itself is lowered too, so a bad one fails before anything exists.
    let sc = p.seccomp.expect("filter");
    assert_eq!(sc.default_action, husk_spec::seccomp::Action::Errno(38));
    assert_eq!(sc.rules.len(), 1);
    let e = lower_json(&base(
        r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_NOPE"}}"#,
    ))
    .unwrap_err();
    assert_eq!(
        e,
        "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""
    );
}
