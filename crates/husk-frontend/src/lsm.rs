//! `--security-opt apparmor=…` and `label=…`, as docker reads them (`=` or the older `:`).
//! The front end confines nothing by default, as docker without `--selinux-enabled` and
//! without its generated docker-default profile; these options ask for it. A label option
//! where SELinux is absent is an error, never a silent no-op; `label=disable` and
//! `apparmor=unconfined` ask for nothing and are accepted everywhere.

use husk_runtime::Error;
use husk_spec::Spec;

#[derive(Default, Debug, PartialEq)]
pub struct Opts {
    apparmor: Option<String>,
    /// `label=KEY:VALUE` parts in order (user, role, type, level, filetype).
    label: Vec<(String, String)>,
    label_disable: bool,
}

fn bad(o: &str, msg: &str) -> Error {
    Error::Msg(format!("--security-opt {o}: {msg}"))
}

/// Whether `o` is an LSM option (then `take` it).
pub fn is_lsm(o: &str) -> bool {
    ["apparmor=", "apparmor:", "label=", "label:"]
        .iter()
        .any(|p| o.starts_with(p))
}

impl Opts {
    pub fn take(&mut self, o: &str) -> Result<(), Error> {
        let (key, value) = match o.find(['=', ':']) {
            Some(i) => (&o[..i], &o[i + 1..]),
            None => (o, ""),
        };
        match key {
            "apparmor" if value.is_empty() => return Err(bad(o, "want apparmor=PROFILE")),
            "apparmor" if value == "unconfined" => self.apparmor = None,
            "apparmor" => {
                husk_spec::lsm::check_label(value).map_err(|m| bad(o, &m))?;
                self.apparmor = Some(value.to_string());
            }
            "label" if value == "disable" => self.label_disable = true,
            "label" => {
                let (k, v) = value
                    .split_once(':')
                    .filter(|(k, v)| {
                        ["user", "role", "type", "level", "filetype"].contains(k) && !v.is_empty()
                    })
                    .ok_or_else(|| {
                        bad(
                            o,
                            "want label=user:U, role:R, type:T, level:L, filetype:T or disable",
                        )
                    })?;
                self.label.push((k.to_string(), v.to_string()));
            }
            _ => return Err(bad(o, "unknown option")),
        }
        Ok(())
    }

    /// Puts the asked-for profile and labels in the spec. SELinux labels start from the
    /// policy's container contexts (lxc_contexts), with a random MCS pair unless a level is
    /// given, as go-selinux's InitLabels does for docker and podman.
    pub fn apply(&self, spec: &mut Spec) -> Result<(), Error> {
        let process = spec.process.get_or_insert_with(Default::default);
        process.apparmor_profile = self.apparmor.clone();
        if self.label_disable || self.label.is_empty() {
            return Ok(());
        }
        if !husk_runtime::lsm::selinux_enabled() {
            return Err(Error::Msg(
                "--security-opt label=…: SELinux is not enabled on this host".into(),
            ));
        }
        let contexts = lxc_contexts()?;
        let (p, m) = compose(&contexts, &self.label, &random_mcs()?).map_err(Error::Msg)?;
        process.selinux_label = Some(p);
        spec.linux.get_or_insert_with(Default::default).mount_label = Some(m);
        Ok(())
    }
}

/// The policy's `contexts/lxc_contexts` (policy from /etc/selinux/config, as libselinux).
fn lxc_contexts() -> Result<String, Error> {
    let cfg = std::fs::read_to_string("/etc/selinux/config")
        .map_err(Error::io("read", "/etc/selinux/config"))?;
    let policy = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("SELINUXTYPE="))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| Error::Msg("/etc/selinux/config: no SELINUXTYPE".into()))?;
    let path = format!("/etc/selinux/{policy}/contexts/lxc_contexts");
    std::fs::read_to_string(&path).map_err(Error::io("read", path))
}

fn random_mcs() -> Result<String, Error> {
    let b = husk_sys::random::bytes::<4>().map_err(Error::io("read", husk_sys::random::SOURCE))?;
    let c1 = u16::from_le_bytes([b[0], b[1]]) % 1024;
    let mut c2 = u16::from_le_bytes([b[2], b[3]]) % 1024;
    if c2 == c1 {
        c2 = (c1 + 1) % 1024;
    }
    Ok(format!("s0:c{},c{}", c1.min(c2), c1.max(c2)))
}

/// (process label, mount label) from lxc_contexts' `process` and `file` entries, with `mcs` as
/// the level of both, then the asked-for parts: user and level change both, role and type the
/// process label, filetype the mount label's type.
fn compose(
    contexts: &str,
    parts: &[(String, String)],
    mcs: &str,
) -> Result<(String, String), String> {
    let entry = |key: &str| -> Result<Vec<String>, String> {
        let value = contexts
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .ok_or_else(|| format!("lxc_contexts: no \"{key}\" context"))?;
        let mut f: Vec<String> = value.splitn(4, ':').map(String::from).collect();
        if f.len() < 3 {
            return Err(format!(
                "lxc_contexts: \"{value}\" is not user:role:type[:level]"
            ));
        }
        f.truncate(3);
        f.push(mcs.to_string());
        Ok(f)
    };
    let (mut p, mut m) = (entry("process")?, entry("file")?);
    for (k, v) in parts {
        match k.as_str() {
            "user" => (p[0], m[0]) = (v.clone(), v.clone()),
            "role" => p[1] = v.clone(),
            "type" => p[2] = v.clone(),
            "level" => (p[3], m[3]) = (v.clone(), v.clone()),
            "filetype" => m[2] = v.clone(),
            _ => return Err(format!("label {k}: unknown part")),
        }
    }
    Ok((p.join(":"), m.join(":")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(opts: &[&str]) -> Result<Opts, Error> {
        let mut o = Opts::default();
        for s in opts {
            assert!(is_lsm(s), "{s}");
            o.take(s)?;
        }
        Ok(o)
    }

    #[test]
    fn apparmor_profiles() {
        let mut spec = Spec::default();
        take(&["apparmor=my-profile"])
            .unwrap()
            .apply(&mut spec)
            .unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().apparmor_profile.as_deref(),
            Some("my-profile")
        );
        let o = take(&["apparmor:old-sep"]).unwrap();
        assert_eq!(o.apparmor.as_deref(), Some("old-sep"));
        // unconfined: no profile to apply, as docker leaves the process.
        let o = take(&["apparmor=p", "apparmor=unconfined"]).unwrap();
        assert_eq!(o.apparmor, None);
        assert!(take(&["apparmor="]).is_err());
        assert!(take(&["apparmor=a\"b"]).is_err());
        assert!(!is_lsm("seccomp=x") && !is_lsm("apparmorx"));
    }

    #[test]
    fn label_options() {
        let o = take(&["label=disable"]).unwrap();
        assert!(o.label_disable);
        let mut spec = Spec::default();
        o.apply(&mut spec).unwrap();
        assert_eq!(spec.process.unwrap().selinux_label, None);
        let o = take(&["label=type:spc_t", "label:level:s0:c1,c2"]).unwrap();
        assert_eq!(
            o.label,
            vec![
                ("type".into(), "spc_t".into()),
                ("level".into(), "s0:c1,c2".into())
            ]
        );
        for bad in ["label=bogus:x", "label=type:", "label=type", "label="] {
            assert!(take(&[bad]).is_err(), "{bad}");
        }
        if !husk_runtime::lsm::selinux_enabled() {
            let e = o.apply(&mut Spec::default()).unwrap_err().to_string();
            assert!(e.contains("SELinux is not enabled"), "{e}");
        }
    }

    const LXC: &str = r#"process = "system_u:system_r:container_t:s0"
content = "system_u:object_r:virt_var_lib_t:s0"
file = "system_u:object_r:container_file_t:s0"
ro_file="system_u:object_r:container_ro_file_t:s0"
"#;

    #[test]
    fn labels_start_from_the_policy_contexts() {
        let (p, m) = compose(LXC, &[], "s0:c5,c9").unwrap();
        assert_eq!(p, "system_u:system_r:container_t:s0:c5,c9");
        assert_eq!(m, "system_u:object_r:container_file_t:s0:c5,c9");
        let parts = [
            ("type".to_string(), "spc_t".to_string()),
            ("level".to_string(), "s0:c1,c2".to_string()),
            ("filetype".to_string(), "my_file_t".to_string()),
            ("user".to_string(), "user_u".to_string()),
            ("role".to_string(), "user_r".to_string()),
        ];
        let (p, m) = compose(LXC, &parts, "s0:c5,c9").unwrap();
        assert_eq!(p, "user_u:user_r:spc_t:s0:c1,c2");
        assert_eq!(m, "user_u:object_r:my_file_t:s0:c1,c2");
        assert!(compose("file = \"a:b:c:s0\"", &[], "s0").is_err());
        assert!(compose("process = \"nonsense\"\nfile = \"a:b:c\"", &[], "s0").is_err());
    }

    #[test]
    fn mcs_pairs_are_two_distinct_ordered_categories() {
        for _ in 0..50 {
            let mcs = random_mcs().unwrap();
            let (a, b) = mcs
                .strip_prefix("s0:c")
                .and_then(|r| r.split_once(",c"))
                .unwrap();
            let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
            assert!(a < b && b < 1024, "{mcs}");
        }
    }
}
