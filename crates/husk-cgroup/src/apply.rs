//! Applying planned resource writes to a container's cgroup directories on this host's layout.

use crate::resources::{self, Resources, Version, Write};
use crate::{Cgroup, CgroupError, Hierarchies, Layout, devices_bpf};
use husk_sys::bpf;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        allowed: crate::hints::allowed(path, value, source.raw_os_error()),
        source,
    })
}

/// Attaches the device program to the cgroup2 directory, then detaches the ones attached there
/// before (`update`), so there is never a moment without a filter. Each failure names its step.
fn install_device_filter(dir: &Path, insns: &[devices_bpf::Insn]) -> Result<(), CgroupError> {
    let err = |step: &'static str| {
        move |source| CgroupError::Io {
            step,
            path: dir.to_path_buf(),
            source,
        }
    };
    let cg = fs::File::open(dir).map_err(err("open"))?;
    let old = bpf::prog_query_cgroup_device(cg.as_fd()).map_err(err(
        "devices: list the attached device programs (bpf BPF_PROG_QUERY) of",
    ))?;
    let raw: Vec<bpf::Insn> = insns
        .iter()
        .map(|i| bpf::Insn::new(i.code, i.dst, i.src, i.off, i.imm))
        .collect();
    let prog = bpf::prog_load_cgroup_device(&raw).map_err(err(
        "devices: load the device program (bpf BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE) for",
    ))?;
    bpf::prog_attach_cgroup_device(prog.as_fd(), cg.as_fd()).map_err(err(
        "devices: attach the device program (bpf BPF_PROG_ATTACH, BPF_CGROUP_DEVICE) to",
    ))?;
    for id in old {
        let old_prog = match bpf::prog_fd_by_id(id) {
            Ok(fd) => fd,
            // Gone meanwhile (or replaced by a kernel without multi-attach).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                return Err(err(
                    "devices: open the old device program (bpf BPF_PROG_GET_FD_BY_ID) of",
                )(e));
            }
        };
        match bpf::prog_detach_cgroup_device(old_prog.as_fd(), cg.as_fd()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => r.map_err(err(
                "devices: detach the old device program (bpf BPF_PROG_DETACH) from",
            ))?,
        }
    }
    Ok(())
}

/// What `apply` writes for `res` on this layout, computed without touching anything: the
/// resources as applied (runc's default device rules added), the `unified` entries a hybrid
/// host writes in its cgroup2 tree, and the planned writes.
pub(crate) fn prepare(
    h: &Hierarchies,
    res: &Resources,
    extra_devices: &[(char, i64, i64)],
) -> Result<(Resources, BTreeMap<String, String>, resources::Writes), CgroupError> {
    let layout = h.layout();
    let mut res = res.clone();
    // A config without device rules leaves the devices alone (the update path sends only
    // what changes); one with rules gets runc's defaults after them.
    if !res.devices.is_empty() {
        res.devices.extend(resources::runc_default_rules());
    }
    // On hybrid hosts `unified` goes to the cgroup2 tree, beside the v1 controllers.
    let unified = if layout == Layout::Hybrid {
        std::mem::take(&mut res.unified)
    } else {
        Default::default()
    };
    let version = if layout == Layout::V2 {
        Version::V2
    } else {
        Version::V1
    };
    let planned =
        resources::plan(&res, version, extra_devices).map_err(CgroupError::Unsupported)?;
    for k in unified.keys() {
        resources::check_unified_key(k).map_err(CgroupError::Unsupported)?;
    }
    if layout == Layout::V2 && !res.devices.is_empty() {
        devices_bpf::compile(&res.devices, extra_devices).map_err(CgroupError::Unsupported)?;
    }
    Ok((res, unified, planned))
}

/// Every error `linux.resources` can cause by itself on this layout (a bound, a field this
/// layout lacks), found before the caller makes anything: what is left for `apply` is what
/// only the kernel can say.
pub fn check(
    h: &Hierarchies,
    res: &Resources,
    extra_devices: &[(char, i64, i64)],
) -> Result<(), CgroupError> {
    prepare(h, res, extra_devices).map(drop)
}

impl Cgroup {
    /// The directory of a v1 controller's hierarchy, if this host mounts one.
    pub fn dir_for_controller(&self, h: &Hierarchies, controller: &str) -> Option<PathBuf> {
        self.dir_for(h, controller).cloned()
    }

    /// The directory for a v1 controller (`""`: the cgroup2 directory).
    fn dir_for(&self, h: &Hierarchies, controller: &str) -> Option<&PathBuf> {
        if controller.is_empty() {
            return self.unified.as_ref();
        }
        let hier = h
            .list
            .iter()
            .find(|x| !x.v2 && x.controllers.iter().any(|c| c == controller))?;
        self.dirs.iter().find(|d| d.starts_with(&hier.mountpoint))
    }

    /// Enables every controller the parents offer along the cgroup2 path, so the leaf gets the
    /// interface files (cgroup v2 delegation through cgroup.subtree_control).
    pub fn enable_controllers(&self, h: &Hierarchies) -> Result<(), CgroupError> {
        let (Some(leaf), Some(hier)) = (&self.unified, h.list.iter().find(|x| x.v2)) else {
            return Ok(());
        };
        let mut ancestors: Vec<&Path> = leaf
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(&hier.mountpoint))
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            let Ok(available) = fs::read_to_string(dir.join("cgroup.controllers")) else {
                continue;
            };
            let enabled =
                fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            for c in available
                .split_whitespace()
                .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            {
                // One at a time: a controller the kernel refuses here must not block the others.
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
        Ok(())
    }

    fn write_one(&self, h: &Hierarchies, w: &Write) -> Result<(), CgroupError> {
        let layout = h.layout();
        let dir = match self.dir_for(h, w.controller) {
            Some(d) => d.clone(),
            // Hybrid hosts: hugetlb may live only in the cgroup2 tree (as on this project's CI).
            None if w.controller == "hugetlb"
                && layout == Layout::Hybrid
                && self.unified.is_some() =>
            {
                let file = w.file.replace(".limit_in_bytes", ".max");
                let u = self.unified.clone().expect("checked");
                return self.write_checked(&u, &file, &w.value);
            }
            None => {
                return Err(CgroupError::Unsupported(format!(
                    "{}: the {} controller is not mounted on this host",
                    w.file, w.controller
                )));
            }
        };
        match self.write_checked(&dir, &w.file, &w.value) {
            // io.bfq.weight exists only with the BFQ scheduler; io.weight takes the v2 range.
            Err(CgroupError::Unsupported(_)) if w.file == "io.bfq.weight" => {
                let value = match w.value.split_once(' ') {
                    Some((dev, v)) => format!(
                        "{dev} {}",
                        resources::blkio_weight_to_io(v.parse().unwrap_or(0))
                    ),
                    None => resources::blkio_weight_to_io(w.value.parse().unwrap_or(0)).to_string(),
                };
                self.write_checked(&dir, "io.weight", &value)
            }
            r => r,
        }
    }

    fn write_checked(&self, dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = dir.join(file);
        if !path.exists() {
            return Err(CgroupError::Unsupported(format!(
                "{file}: not supported by this host's kernel ({} is missing)",
                path.display()
            )));
        }
        write_file(&path, value)
    }

    /// Applies `res`. Returns warnings (fields the kernel dropped) for the caller to log.
    /// memory.checkBeforeUpdate: refuse a memory limit below what the cgroup already uses
    /// (the kernel would reclaim or OOM-kill to get there).
    fn check_before_update(&self, h: &Hierarchies, res: &Resources) -> Result<(), CgroupError> {
        let Some(m) = res
            .memory
            .as_ref()
            .filter(|m| m.check_before_update == Some(true))
        else {
            return Ok(());
        };
        let Some(limit) = m.limit.filter(|l| *l > 0) else {
            return Ok(());
        };
        let usage = match self.dir_for(h, "memory") {
            Some(d) => fs::read_to_string(d.join("memory.usage_in_bytes")),
            None => self.unified.as_ref().map_or(Ok(String::new()), |u| {
                fs::read_to_string(u.join("memory.current"))
            }),
        };
        let usage: i64 = usage.ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if limit < usage {
            return Err(CgroupError::Unsupported(format!(
                "memory.checkBeforeUpdate: the new limit {limit} is below the current usage {usage}"
            )));
        }
        Ok(())
    }

    pub fn apply(
        &self,
        h: &Hierarchies,
        res: &Resources,
        extra_devices: &[(char, i64, i64)],
    ) -> Result<Vec<String>, CgroupError> {
        let layout = h.layout();
        self.check_before_update(h, res)?;
        let (res, unified, planned) = prepare(h, res, extra_devices)?;
        // v2 leaves get interface files only for controllers their parents enable; on hybrid
        // hosts the cgroup2 tree may carry some limits (hugetlb, `unified`).
        if layout != Layout::V1 && (!planned.writes.is_empty() || !unified.is_empty()) {
            self.enable_controllers(h)?;
        }
        let mut done_memsw = false;
        for w in &planned.writes {
            if w.file == "memory.memsw.limit_in_bytes" && done_memsw {
                continue;
            }
            match self.write_one(h, w) {
                // v1 keeps limit <= memsw: when raising both, memsw must go first.
                Err(CgroupError::Write { source, .. })
                    if planned.memory_pair
                        && w.file == "memory.limit_in_bytes"
                        && source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    let memsw = planned
                        .writes
                        .iter()
                        .find(|x| x.file == "memory.memsw.limit_in_bytes")
                        .expect("memory_pair");
                    self.write_one(h, memsw)?;
                    self.write_one(h, w)?;
                    done_memsw = true;
                }
                r => r?,
            }
        }
        if let Some(u) = &self.unified {
            for (k, v) in &unified {
                self.write_checked(u, k, v)?;
            }
        } else if !unified.is_empty() {
            return Err(CgroupError::Unsupported(
                "unified: this host has no cgroup2 hierarchy".into(),
            ));
        }
        // cgroup v2 has no devices files: the rules become a BPF program on the directory.
        if layout == Layout::V2 && !res.devices.is_empty() {
            let insns = devices_bpf::compile(&res.devices, extra_devices)
                .map_err(CgroupError::Unsupported)?;
            let dir = self.unified.as_ref().ok_or_else(|| {
                CgroupError::Unsupported("devices: this host has no cgroup2 directory".into())
            })?;
            install_device_filter(dir, &insns)?;
        }
        Ok(planned.warnings)
    }

    /// Kills every process in the cgroup and waits until it is empty, so removing it never
    /// meets EBUSY: cgroup.kill where the kernel has it (v2, also the cgroup2 tree of hybrid
    /// hosts), else freeze, signal each pid, thaw (a frozen cgroup cannot fork away from us).
    pub fn kill_all(&self, h: &Hierarchies, signal: impl Fn(i32)) -> Result<(), CgroupError> {
        let killfile = self
            .unified
            .as_ref()
            .map(|u| u.join("cgroup.kill"))
            .filter(|k| k.exists());
        if let Some(k) = &killfile {
            write_file(k, "1")?;
        } else {
            let frozen = self.dir_for(h, "freezer").is_some() && self.freeze(h, true).is_ok();
            for pid in self.pids() {
                signal(pid);
            }
            if frozen {
                self.freeze(h, false)?;
            }
        }
        for i in 0..2000 {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            // A process that was forking while we signalled: signal again.
            if killfile.is_none() && i % 50 == 49 {
                pids.iter().for_each(|p| signal(*p));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Io {
            step: "kill processes in",
            path: self.dirs.first().cloned().unwrap_or_default(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        })
    }

    /// Freezes or thaws every process (v1 freezer, or v2 cgroup.freeze), waiting until done.
    pub fn freeze(&self, h: &Hierarchies, frozen: bool) -> Result<(), CgroupError> {
        if let Some(dir) = self.dir_for(h, "freezer") {
            let path = dir.join("freezer.state");
            let want = if frozen { "FROZEN" } else { "THAWED" };
            for _ in 0..1000 {
                write_file(&path, want)?;
                if fs::read_to_string(&path)
                    .map_err(|source| CgroupError::Io {
                        step: "read",
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    == want
                {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Err(CgroupError::Io {
                step: "freeze",
                path,
                source: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        let Some(dir) = self
            .unified
            .as_ref()
            .filter(|d| d.join("cgroup.freeze").exists())
        else {
            return Err(CgroupError::Unsupported(
                "pause: no freezer on this host".into(),
            ));
        };
        write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let events = dir.join("cgroup.events");
        for _ in 0..1000 {
            let text = fs::read_to_string(&events).unwrap_or_default();
            if text
                .lines()
                .any(|l| l == if frozen { "frozen 1" } else { "frozen 0" })
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Io {
            step: "freeze",
            path: events,
            source: io::Error::from_raw_os_error(libc::EBUSY),
        })
    }
}
