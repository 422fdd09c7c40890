//! docker's container verbs on front-end containers (crate husk-containers), and the rule that
//! shares `ps`, `kill`, `start` and `exec` with runc's verbs: a name or id that is a runc-mode
//! container under --root (what engines create) keeps runc's meaning; any other is looked up
//! among the front-end containers, which live in their own store (husk_containers::store).

use clap::{Args, Subcommand};
use husk_containers::{Store, logs, verbs};
use husk_runtime::Error;
use std::path::Path;

/// Whether `id` keeps runc's meaning: a runc-mode container under `root`, or no front-end
/// container either (runc's own error then, which engines match on).
pub fn is_runc(root: &Path, id: &str) -> bool {
    (husk_spec::validate_id(id).is_ok() && root.join(id).join("state.json").exists())
        || store(root).resolve(id).is_err()
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing what the container writes until it stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all": every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its time (RFC 3339, nanoseconds)
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since a time: RFC 3339, Unix seconds, or a duration ago (10s, 5m, 1h)
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines until a time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before KILL (default: the container's
    /// --stop-timeout, else 10; -1 waits forever)
    #[arg(short = 't', long = "time", allow_negative_numbers = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Accepted for docker's sake: an image's anonymous volumes always go with their container
    /// (husk has no volume verbs that could reach one left behind)
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Remove every front-end container that is not running
    Prune {
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

fn store(root: &Path) -> Store {
    Store::for_root(root)
}

fn out() -> crate::out::Stdout {
    crate::out::stdout()
}

/// Runs `f` for each name, printing the name as docker does; the first error is returned after
/// the others were tried.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), Error>) -> Result<i32, Error> {
    if let [n] = names {
        // One name: its error is the command's, printed once by main.
        f(n)?;
        crate::out::line(n)?;
        return Ok(0);
    }
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => crate::out::line(n)?,
            Err(e) => {
                eprintln!("husk: {n}: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn logs(root: &Path, a: &LogsArgs) -> Result<i32, Error> {
    let s = store(root);
    let id = s.resolve(&a.container)?;
    let now = husk_containers::time::now_ns();
    let when = |flag: &str, v: &Option<String>| -> Result<Option<u64>, Error> {
        v.as_ref()
            .map(|t| {
                husk_containers::time::parse_since(t, now).ok_or_else(|| {
                    Error::Msg(format!(
                        "{flag} {t}: want an RFC 3339 time, Unix seconds or a duration like 10m"
                    ))
                })
            })
            .transpose()
    };
    let tail =
        match a.tail.as_str() {
            "all" => None,
            n => Some(n.parse::<usize>().map_err(|_| {
                Error::Msg(format!("--tail {n}: want a number of lines or \"all\""))
            })?),
        };
    let o = logs::Options {
        follow: a.follow,
        tail,
        timestamps: a.timestamps,
        since: when("--since", &a.since)?,
        until: when("--until", &a.until)?,
    };
    logs::show(&s, &id, &o, &mut out(), &mut std::io::stderr())?;
    Ok(0)
}

pub fn stop(root: &Path, a: &StopArgs) -> Result<i32, Error> {
    let s = store(root);
    each(&a.containers, |n| verbs::stop(&s, n, a.time))
}

pub fn restart(root: &Path, a: &StopArgs) -> Result<i32, Error> {
    let s = store(root);
    each(&a.containers, |n| {
        verbs::stop(&s, n, a.time)?;
        verbs::start(&s, n, None).map(drop).map_err(|(e, _)| e)
    })
}

pub fn rm(root: &Path, a: &RmArgs) -> Result<i32, Error> {
    let s = store(root);
    let r = each(&a.containers, |n| verbs::rm(&s, n, a.force));
    if a.force {
        // The image root of a `run IMAGE` killed before its container had a record (so no
        // name to remove) goes too, as the user cleaning up after a crash expects.
        crate::images::reclaim_roots();
    }
    r
}

pub fn kill(root: &Path, names: &[String], signal: &str) -> Result<i32, Error> {
    let name = signal.strip_prefix('-').unwrap_or(signal);
    let sig = husk_spec::names::signal(name)
        .ok_or_else(|| Error::Msg(format!("unknown signal \"{signal}\"")))?;
    let s = store(root);
    each(names, |n| verbs::kill(&s, n, sig))
}

/// `start`; `attach`: `-a` with (`-i`, `--detach-keys`).
pub fn start(root: &Path, names: &[String], attach: Option<(bool, &str)>) -> Result<i32, Error> {
    let s = store(root);
    if let Some((input, keys)) = attach {
        let [n] = names else {
            return Err(Error::Msg("start -a takes one container".into()));
        };
        return with_attach(input, keys, |a| {
            verbs::start(&s, n, Some(a)).map_err(|(e, _)| e)
        });
    }
    each(names, |n| {
        verbs::start(&s, n, None).map(drop).map_err(|(e, _)| e)
    })
}

pub fn wait(root: &Path, names: &[String]) -> Result<i32, Error> {
    let s = store(root);
    if let [n] = names {
        crate::out::line(verbs::wait(&s, n)?)?;
        return Ok(0);
    }
    let mut failed = false;
    for n in names {
        match verbs::wait(&s, n) {
            Ok(code) => crate::out::line(code)?,
            Err(e) => {
                eprintln!("husk: {n}: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn inspect(root: &Path, names: &[String]) -> Result<i32, Error> {
    let s = store(root);
    let v = names
        .iter()
        .map(|n| verbs::inspect(&s, n))
        .collect::<Result<Vec<_>, _>>()?;
    crate::out::line(serde_json::to_string_pretty(&v).map_err(|e| Error::Msg(e.to_string()))?)?;
    Ok(0)
}

/// The caller's stdio as an attachment with `--detach-keys` parsed.
fn with_attach(
    input: bool,
    keys: &str,
    f: impl FnOnce(verbs::Attach<'_>) -> Result<i32, Error>,
) -> Result<i32, Error> {
    let keys = husk_containers::attach::parse_keys(keys)?;
    f(verbs::Attach {
        input,
        stdin_once: false,
        keys: &keys,
        out: &mut out(),
        err: &mut std::io::stderr(),
    })
}

pub fn attach(root: &Path, name: &str, input: bool, keys: &str) -> Result<i32, Error> {
    with_attach(input, keys, |a| verbs::attach(&store(root), name, a))
}

pub fn ps(root: &Path, all: bool, quiet: bool, format: &str, no_trunc: bool) -> Result<i32, Error> {
    // One write for the whole table (stdout is line-buffered: a write per row otherwise).
    let mut buf = std::io::BufWriter::with_capacity(64 << 10, out());
    verbs::ps(&store(root), all, quiet, format, no_trunc, &mut buf)?;
    std::io::Write::flush(&mut buf).map_err(Error::io("write", "stdout"))?;
    Ok(0)
}

pub fn container(root: &Path, c: &ContainerCmd) -> Result<i32, Error> {
    match c {
        ContainerCmd::Prune { force } => {
            if !force && !crate::out::confirm("This will remove all stopped containers.") {
                return Ok(0);
            }
            let ids = verbs::prune(&store(root))?;
            crate::out::line("Deleted Containers:")?;
            for id in &ids {
                crate::out::line(id)?;
            }
            Ok(0)
        }
    }
}

/// The runtime root and full id of a front-end container named by `word`, for `exec`.
pub fn exec_target(root: &Path, word: &str) -> Result<(std::path::PathBuf, String), Error> {
    let s = store(root);
    let id = s
        .resolve(word)
        .map_err(|_| Error::NotExist(word.to_string()))?;
    Ok((s.run.clone(), id))
}
