//! Commands that act through the container's cgroup: pause, resume, ps, update, events.

use crate::Error;
use crate::state::{ContainerDir, Status};
use husk_cgroup::Hierarchies;
use husk_cgroup::resources::Resources;
use std::io::Write;
use std::path::Path;

fn open_running(
    root: &Path,
    id: &str,
) -> Result<(ContainerDir, crate::state::State, Status), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    Ok((dir, state, status))
}

pub fn pause(root: &Path, id: &str) -> Result<(), Error> {
    let (_dir, state, status) = open_running(root, id)?;
    if status != Status::Running {
        return Err(Error::not_running("pause", id, status));
    }
    Ok(state.cgroup().freeze(&Hierarchies::detect()?, true)?)
}

pub fn resume(root: &Path, id: &str) -> Result<(), Error> {
    let (_dir, state, status) = open_running(root, id)?;
    if status != Status::Paused {
        return Err(Error::Msg(format!(
            "cannot resume a container that is {}",
            status.as_str()
        )));
    }
    Ok(state.cgroup().freeze(&Hierarchies::detect()?, false)?)
}

/// The pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>, Error> {
    let (_dir, state, status) = open_running(root, id)?;
    if status == Status::Stopped {
        return Err(Error::not_running("list the processes of", id, status));
    }
    Ok(state.cgroup().pids())
}

/// Applies new limits to a live container.
pub fn update(root: &Path, id: &str, res: &Resources) -> Result<(), Error> {
    let (_dir, state, status) = open_running(root, id)?;
    if status == Status::Stopped {
        return Err(Error::not_running("update", id, status));
    }
    let h = Hierarchies::detect()?;
    // systemd first (runc's order), so a daemon-reload later keeps the new limits.
    if let Some(unit) = &state.systemd_unit {
        husk_cgroup::systemd::update(unit, &h, res, &state.devices)?;
    }
    // New device rules replace the old ones (v2: a new program; v1: appended to the files);
    // the container's own device nodes stay allowed.
    for w in state.cgroup().apply(&h, res, &state.devices)? {
        crate::log::warn(&w);
    }
    Ok(())
}

/// `events`: one stats object with `stats_once`, else stats every `interval` and an `oom` event
/// whenever the OOM-kill counter grows, until the container stops.
pub fn events(
    root: &Path,
    id: &str,
    interval: std::time::Duration,
    stats_once: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let h = Hierarchies::detect()?;
    let (dir, state, status) = open_running(root, id)?;
    if status == Status::Stopped {
        return Err(Error::not_running("watch the events of", id, status));
    }
    let cg = state.cgroup();
    let emit = |out: &mut dyn Write, kind: &str, data: serde_json::Value| -> Result<(), Error> {
        let line = serde_json::json!({"type": kind, "id": id, "data": data});
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(Error::io("write", "stdout"))
    };
    if stats_once {
        return emit(out, "stats", husk_cgroup::stats::stats(&cg, &h));
    }
    drop(dir);
    let mut ooms = husk_cgroup::stats::oom_kills(&cg, &h);
    loop {
        let now = husk_cgroup::stats::oom_kills(&cg, &h);
        if now > ooms {
            emit(out, "oom", serde_json::Value::Null)?;
            ooms = now;
        }
        emit(out, "stats", husk_cgroup::stats::stats(&cg, &h))?;
        if !state.init_alive() {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
