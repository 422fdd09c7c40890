//! The systemd cgroup driver (`--systemd-cgroup`): a container's cgroup is a transient scope
//! unit systemd makes and owns (Delegate=yes), named from runc's `slice:prefix:name`
//! cgroupsPath. Only the three things systemd must do go over D-Bus — start the scope with
//! init's pid, set its properties on `update`, stop it on `delete`; limits are then written to
//! the cgroup files as with cgroupfs (what systemd cannot express included), and pause, kill,
//! stats and exec use the files alone. Nothing here runs unless the flag is given.

pub mod annotations;
pub mod dbus;
pub mod props;

use crate::resources::{self, Resources, Version};
use crate::{CgroupError, Hierarchies, Layout};
use dbus::{CallError, Conn, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where systemd listens for its own clients (root only), with no bus daemon in between.
pub const PRIVATE_BUS: &str = "/run/systemd/private";
/// What husk waits for systemd: a TCG-emulated guest needs seconds for what takes
/// milliseconds on a host.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long the first reply on a new connection may take before husk connects again.
const FIRST_REPLY: Duration = Duration::from_secs(10);
/// How long husk keeps asking for systemd's first answer. systemd handles its bus between
/// other work, and re-reading mountinfo after many mount changes can keep it from the bus for
/// a long time (runc#3904); in the TCG-emulated test guest that was over a minute.
const FIRST_ANSWER: Duration = Duration::from_secs(180);

/// A container's unit: the parent slice and the scope's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub slice: String,
    pub name: String,
}

/// runc's ExpandSlice: systemd nests `a-b.slice` in `a.slice`, so its cgroup is
/// /a.slice/a-b.slice; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "\"{slice}\" is not a slice name (NAME.slice, no '/', no empty part between dashes)"
        )
    };
    let base = slice
        .strip_suffix(".slice")
        .filter(|b| !b.is_empty() && !slice.contains('/'))
        .ok_or_else(bad)?;
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// Characters systemd takes in a unit name (unit_name_is_valid), 255 at most.
fn valid_unit_name(name: &str) -> bool {
    name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

impl Unit {
    /// From runc's cgroupsPath `slice:prefix:name` (an empty slice is system.slice, user.slice
    /// for a rootless caller); no cgroupsPath is `:husk:<id>` (runc's is `:runc:<id>`). Any
    /// other form is refused, as runc does: a path is cgroupfs's language, not a unit.
    pub fn parse(
        cgroups_path: Option<&str>,
        id: &str,
        rootless: bool,
    ) -> Result<Unit, CgroupError> {
        let bad = |why: String| {
            CgroupError::Unsupported(format!(
                "--systemd-cgroup: cgroupsPath {:?}: {why}",
                cgroups_path.unwrap_or_default()
            ))
        };
        let default = format!(":husk:{id}");
        let path = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(&default);
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(bad(
                "the systemd driver takes \"slice:prefix:name\" (e.g. system.slice:husk:ID)".into(),
            ));
        };
        let slice = match slice {
            "" if rootless => "user.slice",
            "" => "system.slice",
            s => s,
        };
        expand_slice(slice).map_err(bad)?;
        if name.ends_with(".slice") {
            return Err(bad(
                "a slice of its own per container (NAME.slice) is not supported; give a scope name"
                    .into(),
            ));
        }
        let unit = format!("{prefix}-{name}.scope");
        if name.is_empty() || !valid_unit_name(&unit) {
            return Err(bad(format!("\"{unit}\" is not a valid unit name")));
        }
        Ok(Unit {
            slice: slice.into(),
            name: unit,
        })
    }

    /// The scope's cgroup as seen from every hierarchy's root: `/<expanded slice>/<unit>`.
    pub fn cgroup_path(&self) -> String {
        let slice = expand_slice(&self.slice).expect("checked by parse");
        format!("{}/{}", slice.trim_end_matches('/'), self.name)
    }
}

/// `linux.resources` as unit properties on this layout (hybrid hosts are v1 to systemd's
/// resource properties, as in runc). `rules` are the device rules as applied.
pub fn resource_properties(
    h: &Hierarchies,
    res: &Resources,
    extra_devices: &[(char, i64, i64)],
    sd_version: u32,
) -> Result<Vec<props::Prop>, CgroupError> {
    let (applied, _, planned) = crate::apply::prepare(h, res, extra_devices)?;
    let v = if h.layout() == Layout::V2 {
        Version::V2
    } else {
        Version::V1
    };
    let mut out =
        props::from_writes(&planned.writes, v, sd_version).map_err(CgroupError::Unsupported)?;
    if !applied.devices.is_empty() {
        let mut rules = applied.devices.clone();
        rules.extend(
            extra_devices
                .iter()
                .map(|&(kind, major, minor)| resources::DeviceRule {
                    allow: true,
                    kind: Some(kind.to_string()),
                    major: Some(major),
                    minor: Some(minor),
                    access: Some("rwm".into()),
                }),
        );
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        out.extend(props::devices(&rules, &proc_devices));
    }
    Ok(out)
}

/// `create`: starts the container's scope with init (`pid`) in it, the unit properties of
/// `res`, then those of the `org.systemd.property.*` annotations (`annotated`, from
/// [`annotations::properties`]; after, so they win, as in runc); the cgroup files are
/// written after, as with cgroupfs.
pub fn start(
    sd: &mut Systemd,
    unit: &Unit,
    h: &Hierarchies,
    pid: i32,
    res: Option<&Resources>,
    extra_devices: &[(char, i64, i64)],
    annotated: &[props::Prop],
) -> Result<(), CgroupError> {
    let mut props = match res {
        Some(r) => resource_properties(h, r, extra_devices, sd.version)?,
        None => Vec::new(),
    };
    props.extend_from_slice(annotated);
    sd.start_scope(unit, pid, h, props)
        .map_err(|e| name_annotated(e, annotated))
}

/// The step of StartTransientUnit's refusal.
const START_STEP: &str = "start (StartTransientUnit)";

/// systemd names a property it does not know ("Cannot set property X, or unknown property."),
/// but not one whose value has the wrong type: that is a bare errno (ENXIO, from reading the
/// variant). A refusal that names none of the properties the annotations set lists them: they
/// are what the config's author wrote freely, husk's own are checked types.
fn name_annotated(e: CgroupError, annotated: &[props::Prop]) -> CgroupError {
    match e {
        CgroupError::Systemd { step, unit, msg }
            if step == START_STEP
                && !annotated.is_empty()
                && !annotated.iter().any(|(n, _)| msg.contains(n.as_str())) =>
        {
            let names: Vec<&str> = annotated.iter().map(|(n, _)| n.as_str()).collect();
            CgroupError::Systemd {
                step,
                unit,
                msg: format!(
                    "{msg}; systemd names no property (a value of the wrong type is refused \
                     so), and the {}* annotations set: {}",
                    annotations::PREFIX,
                    names.join(", ")
                ),
            }
        }
        e => e,
    }
}

/// `update`: the new limits as unit properties (the files are written after).
pub fn update(
    unit: &str,
    h: &Hierarchies,
    res: &Resources,
    extra_devices: &[(char, i64, i64)],
) -> Result<(), CgroupError> {
    let mut sd = Systemd::connect()?;
    let props = resource_properties(h, res, extra_devices, sd.version)?;
    sd.set_properties(unit, props)
}

fn pv(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
}

fn prop_array(props: Vec<props::Prop>) -> Value {
    Value::Array(
        "(sv)".into(),
        props.into_iter().map(|(n, v)| pv(&n, v)).collect(),
    )
}

/// A connection to systemd's manager.
pub struct Systemd {
    conn: Conn,
    /// The manager's version (252 for "252.38-1~deb12u1"), 0 when it does not say.
    pub version: u32,
}

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

fn err<'a>(step: &'static str, unit: &'a str) -> impl Fn(std::io::Error) -> CgroupError + 'a {
    move |e| CgroupError::Systemd {
        step,
        unit: unit.to_string(),
        msg: husk_sys::errno::text(&e),
    }
}

fn refused(step: &'static str, unit: &str, e: CallError) -> CgroupError {
    CgroupError::Systemd {
        step,
        unit: unit.to_string(),
        msg: format!("{} ({})", e.message, e.name),
    }
}

impl Systemd {
    pub fn connect() -> Result<Systemd, CgroupError> {
        Systemd::connect_to(Path::new(PRIVATE_BUS))
    }

    /// Connects and asks the manager's version. A first call systemd leaves unanswered (seen
    /// in the TCG guest under heavy load: the connection accepted, the reply never sent) is
    /// retried on a new connection: asking the version changes nothing.
    pub fn connect_to(path: &Path) -> Result<Systemd, CgroupError> {
        let give_up = Instant::now() + FIRST_ANSWER;
        let (mut sd, v) = loop {
            let conn = Conn::connect(path, FIRST_REPLY).map_err(|e| CgroupError::Systemd {
                step: "connect to",
                unit: path.display().to_string(),
                msg: format!(
                    "{} (is systemd running? --systemd-cgroup needs it)",
                    husk_sys::errno::text(&e)
                ),
            })?;
            let mut sd = Systemd { conn, version: 0 };
            match sd.get(MANAGER_PATH, MANAGER, "Version", "manager") {
                Err(CgroupError::Systemd { msg, .. })
                    if msg.starts_with("EAGAIN") && Instant::now() < give_up =>
                {
                    continue;
                }
                r => break (sd, r?),
            }
        };
        sd.conn
            .set_timeout(DEADLINE)
            .map_err(err("connect to", "manager"))?;
        sd.version = v
            .as_ref()
            .and_then(|v| v.as_str())
            .map(|s| {
                s.trim_start_matches('v')
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
            })
            .unwrap_or(0);
        Ok(sd)
    }

    fn call(
        &mut self,
        step: &'static str,
        unit: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Result<Vec<Value>, CallError>, CgroupError> {
        self.conn
            .call(MANAGER_PATH, MANAGER, member, args)
            .map_err(err(step, unit))
    }

    /// A property of an object, None when the object is gone.
    fn get(
        &mut self,
        path: &str,
        iface: &str,
        prop: &str,
        unit: &str,
    ) -> Result<Option<Value>, CgroupError> {
        let args = [Value::Str(iface.into()), Value::Str(prop.into())];
        match self
            .conn
            .call(path, "org.freedesktop.DBus.Properties", "Get", &args)
            .map_err(err("read a property of", unit))?
        {
            Ok(mut body) if !body.is_empty() => Ok(Some(body.swap_remove(0))),
            Ok(_) => Ok(None),
            Err(e) if e.name.ends_with("UnknownObject") || e.name.ends_with("NoSuchUnit") => {
                Ok(None)
            }
            Err(e) => Err(refused("read a property of", unit, e)),
        }
    }

    /// The unit's ActiveState, None when systemd no longer has it.
    fn active_state(&mut self, unit: &str) -> Result<Option<String>, CgroupError> {
        let path = match self.call("find", unit, "GetUnit", &[Value::Str(unit.into())])? {
            Ok(body) => body
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            Err(e) if e.name.ends_with("NoSuchUnit") => return Ok(None),
            Err(e) => return Err(refused("find", unit, e)),
        };
        let state = self.get(&path, "org.freedesktop.systemd1.Unit", "ActiveState", unit)?;
        Ok(state.and_then(|s| s.as_str().map(String::from)))
    }

    /// Polls the unit until `done` says so (systemd's job runs after the call returns).
    fn wait(
        &mut self,
        unit: &str,
        step: &'static str,
        done: impl Fn(Option<&str>) -> Option<Result<(), String>>,
    ) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            let state = self.active_state(unit)?;
            if let Some(r) = done(state.as_deref()) {
                return r.map_err(|msg| CgroupError::Systemd {
                    step,
                    unit: unit.into(),
                    msg,
                });
            }
            if start.elapsed() > DEADLINE {
                return Err(CgroupError::Systemd {
                    step,
                    unit: unit.into(),
                    msg: format!(
                        "still {:?} after {} s",
                        state.unwrap_or_default(),
                        DEADLINE.as_secs()
                    ),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// StartTransientUnit of the container's scope holding `pid`, then waits until it is
    /// active: from then on `pid` is in the scope's cgroup, which systemd made.
    pub fn start_scope(
        &mut self,
        unit: &Unit,
        pid: i32,
        h: &Hierarchies,
        resources: Vec<props::Prop>,
    ) -> Result<(), CgroupError> {
        let name = &unit.name;
        let io = if h.layout() == Layout::V2 {
            "IOAccounting"
        } else {
            "BlockIOAccounting"
        };
        let mut p = vec![
            (
                "Description".to_string(),
                Value::Str(format!("husk container {name}")),
            ),
            ("Slice".into(), Value::Str(unit.slice.clone())),
            ("Delegate".into(), Value::Bool(true)),
            (
                "PIDs".into(),
                Value::Array("u".into(), vec![Value::U32(pid as u32)]),
            ),
            ("MemoryAccounting".into(), Value::Bool(true)),
            ("CPUAccounting".into(), Value::Bool(true)),
            (io.into(), Value::Bool(true)),
            ("TasksAccounting".into(), Value::Bool(true)),
            ("DefaultDependencies".into(), Value::Bool(false)),
        ];
        p.extend(resources);
        let args = [
            Value::Str(name.clone()),
            Value::Str("replace".into()),
            prop_array(p),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        if let Err(e) = self.call("start", name, "StartTransientUnit", &args)? {
            return Err(refused(START_STEP, name, e));
        }
        let r = self.wait(name, "start", |s| match s {
            Some("active") => Some(Ok(())),
            Some(s @ ("failed" | "deactivating")) => Some(Err(format!("the unit is {s}"))),
            _ => None,
        });
        if r.is_err() {
            let _ = self.stop(name);
        }
        r
    }

    /// SetUnitProperties (runtime only, as runc), for `update`.
    pub fn set_properties(
        &mut self,
        unit: &str,
        props: Vec<props::Prop>,
    ) -> Result<(), CgroupError> {
        if props.is_empty() {
            return Ok(());
        }
        let args = [
            Value::Str(unit.into()),
            Value::Bool(true),
            prop_array(props),
        ];
        match self.call("set properties of", unit, "SetUnitProperties", &args)? {
            Ok(_) => Ok(()),
            Err(e) => Err(refused("set properties (SetUnitProperties) of", unit, e)),
        }
    }

    /// StopUnit and waits until systemd has let it go; a unit already gone (its processes
    /// ended and systemd collected it) is fine. A failed one is reset so systemd forgets it.
    pub fn stop(&mut self, unit: &str) -> Result<(), CgroupError> {
        let args = [Value::Str(unit.into()), Value::Str("replace".into())];
        match self.call("stop", unit, "StopUnit", &args)? {
            Ok(_) => {}
            Err(e) if e.name.ends_with("NoSuchUnit") => return Ok(()),
            Err(e) => return Err(refused("stop (StopUnit)", unit, e)),
        }
        self.wait(unit, "stop", |s| match s {
            None | Some("inactive" | "failed") => Some(Ok(())),
            _ => None,
        })?;
        let _ = self.call("reset", unit, "ResetFailedUnit", &[Value::Str(unit.into())]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An annotated property of the wrong type is refused with ENXIO alone: the error then
    /// names the annotated properties; one systemd names itself, or a refusal of another
    /// step, stays as systemd said it.
    #[test]
    fn a_refusal_naming_no_property_names_the_annotated_ones() {
        let refusal = |step, msg: &str| CgroupError::Systemd {
            step,
            unit: "husk-c1.scope".into(),
            msg: msg.into(),
        };
        let annotated = vec![
            ("SendSIGKILL".to_string(), Value::Str("yes".into())),
            ("TimeoutStopUSec".to_string(), Value::U64(7_000_000)),
        ];
        let e = name_annotated(
            refusal(START_STEP, "No such device or address (System.Error.ENXIO)"),
            &annotated,
        );
        assert_eq!(
            e.to_string(),
            "systemd: start (StartTransientUnit) husk-c1.scope: No such device or address \
             (System.Error.ENXIO); systemd names no property (a value of the wrong type is \
             refused so), and the org.systemd.property.* annotations set: SendSIGKILL, \
             TimeoutStopUSec"
        );
        let named = "Cannot set property SendSIGKILL, or unknown property. \
                     (org.freedesktop.DBus.Error.PropertyReadOnly)";
        let e = name_annotated(refusal(START_STEP, named), &annotated);
        assert!(e.to_string().ends_with(named), "{e}");
        let e = name_annotated(refusal("start", "the unit is failed"), &annotated);
        assert!(e.to_string().ends_with("the unit is failed"), "{e}");
        let e = name_annotated(refusal(START_STEP, "EIO"), &[]);
        assert!(e.to_string().ends_with("EIO"), "{e}");
    }

    #[test]
    fn nested_slices_expand_as_systemd_nests_them() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("kubepods-burstable-pod12.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            ".slice",
            "a.scope",
            "a/b.slice",
            "",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn runcs_cgroups_path_names_the_scope_and_its_slice() {
        let u = Unit::parse(
            Some("kubepods-besteffort.slice:cri-containerd:abc"),
            "id",
            false,
        )
        .unwrap();
        assert_eq!(u.slice, "kubepods-besteffort.slice");
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(
            u.cgroup_path(),
            "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope"
        );
        // An empty slice is system.slice, or user.slice for a rootless caller.
        let u = Unit::parse(Some(":docker:x1"), "id", false).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.cgroup_path().as_str()),
            ("system.slice", "/system.slice/docker-x1.scope")
        );
        assert_eq!(
            Unit::parse(Some(":p:n"), "id", true).unwrap().slice,
            "user.slice"
        );
        assert_eq!(
            Unit::parse(Some("-.slice:p:n"), "id", false)
                .unwrap()
                .cgroup_path(),
            "/p-n.scope"
        );
    }

    #[test]
    fn no_cgroups_path_is_husk_prefix_and_the_id() {
        for path in [None, Some("")] {
            let u = Unit::parse(path, "c1", false).unwrap();
            assert_eq!(
                u,
                Unit {
                    slice: "system.slice".into(),
                    name: "husk-c1.scope".into()
                }
            );
        }
    }

    #[test]
    fn other_forms_are_refused_with_the_form_it_takes() {
        for bad in [
            "/husk/c1",
            "a:b",
            "a:b:c:d",
            "system.slice:p:n.slice",
            "x.slice:p:",
            "a/b.slice:p:n",
            "system.slice:p:n m",
        ] {
            let e = Unit::parse(Some(bad), "c1", false).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        let e = Unit::parse(Some("/husk/c1"), "c1", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("slice:prefix:name"), "{e}");
    }

    #[test]
    fn the_scope_lives_at_the_same_path_in_every_hierarchy() {
        let h = Hierarchies::from_mountinfo(
            "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             32 25 0:28 /lxc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
        );
        let u = Unit::parse(Some("a-b.slice:cri:1"), "id", false).unwrap();
        let cg = crate::Cgroup::locate(&h, &[], &u.cgroup_path()).unwrap();
        let dirs: Vec<String> = cg.dirs.iter().map(|d| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/unified/a.slice/a-b.slice/cri-1.scope",
                "/sys/fs/cgroup/memory/a.slice/a-b.slice/cri-1.scope",
                "/sys/fs/cgroup/pids/a.slice/a-b.slice/cri-1.scope",
            ]
        );
    }
}
