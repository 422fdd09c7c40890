//! The image config applied to `husk run` as docker does: Entrypoint + Cmd (a CMD given on the
//! command line replaces Cmd; --entrypoint replaces Entrypoint and drops Cmd), Env under -e and
//! --env-file, Labels under --label-file and --label, WorkingDir (created when missing), User,
//! StopSignal, unless the command line set them.

use husk_frontend::RunArgs;
use husk_runtime::Error;
use serde_json::Value;
use std::path::Path;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// docker's argv: (entrypoint, cmd) -> entrypoint ++ cmd.
pub fn command(config: &Value, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
    let c = &config["config"];
    let (entry, cmd) = match entrypoint {
        Some("") => (vec![], args.to_vec()),
        Some(e) => (vec![e.to_string()], args.to_vec()),
        None if args.is_empty() => (strings(&c["Entrypoint"]), strings(&c["Cmd"])),
        None => (strings(&c["Entrypoint"]), args.to_vec()),
    };
    [entry, cmd].concat()
}

/// `root`: where the front end makes a missing WorkingDir, or None where it cannot write the
/// root (an ordinary user's keep-id root, whose / is the container's root, not the user): init
/// makes a missing cwd anyway, as root of the container's namespace.
pub fn apply(
    config: &Value,
    a: &mut RunArgs,
    root: Option<&Path>,
    image: &str,
) -> Result<(), Error> {
    let c = &config["config"];
    let argv = command(config, a.entrypoint.as_deref(), &a.args);
    if argv.is_empty() {
        return Err(Error::Msg(format!(
            "{image}: no command specified (the image has no Entrypoint or Cmd): husk run {image} CMD..."
        )));
    }
    a.args = argv;
    a.entrypoint = None;
    a.image_env = strings(&c["Env"]);
    a.image_labels = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    if a.workdir.is_none()
        && let Some(w) = c["WorkingDir"].as_str().filter(|w| !w.is_empty())
    {
        if let Some(root) = root {
            crate::unpack::ensure_dir(root, w)?;
        }
        a.workdir = Some(w.to_string());
    }
    // keep-id runs the command as the user's own ids unless -u says otherwise, over the image's
    // User too (podman's documented rule).
    if a.user.is_none()
        && a.userns.as_deref() != Some("keep-id")
        && let Some(u) = c["User"].as_str().filter(|u| !u.is_empty())
    {
        a.user = Some(u.to_string());
    }
    if a.stop_signal.is_none()
        && let Some(s) = c["StopSignal"].as_str().filter(|s| !s.is_empty())
    {
        a.stop_signal = Some(s.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::command;

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let cfg = serde_json::json!({"config": {"Entrypoint": ["/e"], "Cmd": ["c1", "c2"]}});
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command(&cfg, None, &[]), v(&["/e", "c1", "c2"]));
        assert_eq!(command(&cfg, None, &v(&["x"])), v(&["/e", "x"]));
        assert_eq!(command(&cfg, Some("/o"), &[]), v(&["/o"]));
        assert_eq!(command(&cfg, Some("/o"), &v(&["y"])), v(&["/o", "y"]));
        assert_eq!(command(&cfg, Some(""), &v(&["ls"])), v(&["ls"]));
        let cmd_only = serde_json::json!({"config": {"Cmd": ["sh"]}});
        assert_eq!(command(&cmd_only, None, &[]), v(&["sh"]));
        assert_eq!(command(&cmd_only, None, &v(&["true"])), v(&["true"]));
    }
}
