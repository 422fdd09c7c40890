//! The image's Labels, `-l/--label`, `--label-file`, `--stop-signal` and `--stop-timeout` → the container's
//! annotations, where `husk state` and `husk list --format json` show them.

use super::RunArgs;
use husk_runtime::Error;
use std::collections::BTreeMap;

/// Where the stop signal and timeout are kept (read by a future `husk stop`).
pub const STOP_SIGNAL: &str = "husk.stop-signal";
pub const STOP_TIMEOUT: &str = "husk.stop-timeout";
/// Marks a container of the front end's foreground `husk run`: one found stopped was left by a
/// husk that was killed (its init died with it), and the next run of that name removes it.
pub const FOREGROUND: &str = "husk.foreground";

/// Annotation prefixes husk acts on: its own (`husk.`, the stop settings above) and runc's
/// systemd unit properties (husk_cgroup's `org.systemd.property.`). An image is hostile input,
/// so its Labels never set these; the user's own `--label` may.
const ACTED_ON: [&str; 2] = ["husk.", "org.systemd.property."];

pub fn annotations(a: &RunArgs) -> Result<BTreeMap<String, String>, Error> {
    let mut out: BTreeMap<String, String> = a
        .image_labels
        .iter()
        .filter(|(k, _)| !ACTED_ON.iter().any(|p| k.starts_with(p)))
        .cloned()
        .collect();
    let mut add = |flag: &str, kv: &str| -> Result<(), Error> {
        // docker: `-l KEY` alone is KEY with an empty value.
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k.is_empty() {
            return Err(Error::Msg(format!("{flag} \"{kv}\": the key is empty")));
        }
        out.insert(k.to_string(), v.to_string());
        Ok(())
    };
    for f in &a.label_file {
        let text = std::fs::read_to_string(f).map_err(Error::io("read label file", f))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            add("--label-file", line)?;
        }
    }
    for l in &a.label {
        add("--label", l)?;
    }
    if let Some(s) = &a.stop_signal {
        let name = s.strip_prefix('-').unwrap_or(s);
        let n = husk_spec::names::signal(name)
            .ok_or_else(|| Error::Msg(format!("--stop-signal {s}: unknown signal")))?;
        out.insert(STOP_SIGNAL.into(), n.to_string());
    }
    if let Some(t) = a.stop_timeout {
        out.insert(STOP_TIMEOUT.into(), t.to_string());
    }
    out.insert(FOREGROUND.into(), "true".into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_stop_settings() {
        let file = std::env::temp_dir().join(format!("husk-labels-{}", std::process::id()));
        std::fs::write(&file, "# c\nfrom=file\nboth=file\n").unwrap();
        let a = RunArgs {
            label: vec!["both=flag".into(), "bare".into()],
            label_file: vec![file.clone()],
            image_labels: vec![
                ("img".into(), "image".into()),
                ("from".into(), "image".into()),
                (STOP_TIMEOUT.into(), "99999999".into()),
                (
                    "org.systemd.property.CollectMode".into(),
                    "'inactive-or-failed'".into(),
                ),
            ],
            stop_signal: Some("SIGINT".into()),
            stop_timeout: Some(3),
            ..Default::default()
        };
        let m = annotations(&a).unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(m["from"], "file", "the file wins over the image");
        assert_eq!(m["img"], "image");
        assert_eq!(m["both"], "flag", "flags win over the file");
        assert_eq!(m["bare"], "");
        assert_eq!(m[STOP_SIGNAL], "2");
        assert_eq!(m[STOP_TIMEOUT], "3");
        let image_only = RunArgs {
            image_labels: a.image_labels.clone(),
            ..Default::default()
        };
        let m = annotations(&image_only).unwrap();
        assert!(
            !m.contains_key(STOP_TIMEOUT) && !m.keys().any(|k| k.starts_with("org.systemd.")),
            "an image's labels set what husk acts on: {m:?}"
        );
        assert_eq!(m["img"], "image");
        for bad in [
            RunArgs {
                label: vec!["=x".into()],
                ..Default::default()
            },
            RunArgs {
                stop_signal: Some("NOPE".into()),
                ..Default::default()
            },
        ] {
            assert!(annotations(&bad).is_err());
        }
    }
}
