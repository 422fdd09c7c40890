//! runc-compatible commands and global options. Options are accepted before and after the
//! container id (conformance suites send `create ID --bundle B`).

use clap::{Args, Parser, Subcommand};
use husk_runtime::launch::{self, CreateOpts, Mode};
use husk_runtime::{Error, ops};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    version,
    about = "A fast OCI container runtime (runc's CLI) with a daemonless front end"
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended) [default: /run/husk, or
    /// $XDG_RUNTIME_DIR/husk when rootless]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Also write log lines to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json (json lines with level, msg, time)
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug lines
    #[arg(long, global = true)]
    pub debug: bool,
    /// Narrate each kernel step of create/run on stderr with its cost in µs
    #[arg(long, global = true)]
    pub explain: bool,
    /// runc's: whether cgroups the caller may not write are left out (true) or an error (false);
    /// auto: left out for an ordinary user or root of a user namespace. Before the command
    #[arg(long, value_parser = ["auto", "true", "false"])]
    pub rootless: Option<String>,
    /// Use systemd to manage cgroups: the container's cgroup is a transient scope unit
    /// named by runc's `slice:prefix:name` cgroupsPath
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

// Deferred: each subcommand's arguments are built only for the one invoked (building all of
// them allocated ~340 KiB and cost ~0.18 ms on every invocation).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Write a default config.json into the bundle
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for an ordinary user (runc's): a user namespace mapping the caller to root,
        /// no network or cgroup namespace, the host's /sys bound
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container: set up everything, then wait for `start`
    Create {
        #[command(flatten)]
        c: CreateArgs,
        id: String,
    },
    /// Start a created container (runc); a front-end container: run it again (see `ps`'s rule)
    Start {
        /// Front-end containers: print the output (a terminal: relay it) until it exits,
        /// return its code
        #[arg(short, long)]
        attach: bool,
        /// Front-end containers with -i: with -a, stdin goes to the container
        #[arg(short, long)]
        interactive: bool,
        /// With -a: the keys that detach and leave the container running
        #[arg(long, default_value = "ctrl-p,ctrl-q")]
        detach_keys: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print a container's OCI state as JSON
    State { id: String },
    /// Send a signal (default TERM; a name, a number, or -9 as kill(1)) to a container's init, or
    /// with --all to all its processes
    /// (runc's `kill ID [SIGNAL]`). A front-end container: docker's `kill [-s SIG] NAME...`,
    /// default KILL
    #[command(allow_negative_numbers = true)]
    Kill {
        #[arg(short, long)]
        all: bool,
        /// The signal (front-end containers; runc's form takes it after the id)
        #[arg(short, long = "signal")]
        signal_opt: Option<String>,
        #[arg(required = true)]
        id: Vec<String>,
    },
    /// Delete a container (with --force, also a running one)
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    List {
        #[arg(short, long)]
        quiet: bool,
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// With ID, runc's: a container's processes (table: `ps` output filtered to them; json:
    /// their pids). Without: docker's list of front-end containers. A word naming a runc-mode
    /// container under --root keeps runc's meaning in ps, kill, start and exec; any other names a
    /// front-end container (their own store: /var/lib/husk/fe for the default --root, else ROOT-fe)
    Ps {
        /// table, json, or a template such as '{{.Names}}\t{{.Status}}'
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Front-end list: also the containers that are not running
        #[arg(short, long)]
        all: bool,
        /// Front-end list: ids only
        #[arg(short, long)]
        quiet: bool,
        /// Front-end list: full ids and commands
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        id: Option<String>,
        /// Arguments for ps(1) (default -ef)
        #[arg(last = true)]
        ps_args: Vec<String>,
    },
    /// Change a running container's resource limits
    Update(Box<crate::update::UpdateArgs>),
    /// Print a container's stats and OOM events as JSON lines
    Events {
        /// Print one stats object and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats, e.g. 5s or 500ms
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Run a container: docker's `run` (the daemonless front end), or with -b/--bundle runc's
    /// `run ID`
    Run(Box<husk_frontend::RunArgs>),
    /// Manage networks: create, ls, inspect, rm, prune
    Network {
        #[command(subcommand)]
        cmd: crate::network::NetworkCmd,
    },
    /// List a container's published ports, or the host address of one: `husk port NAME [80/tcp]`
    Port {
        container: String,
        port: Option<String>,
    },
    /// Run a new process in a running container: `husk exec [OPTIONS] ID CMD...`
    Exec(Box<crate::exec::ExecArgs>),
    /// Print a front-end container's output (stdout and stderr, as kept by its monitor)
    Logs(crate::containers::LogsArgs),
    /// Stop front-end containers: their stop signal, then KILL after --time seconds
    Stop(crate::containers::StopArgs),
    /// Stop, then start front-end containers
    Restart(crate::containers::StopArgs),
    /// Remove front-end containers (-f: also running ones)
    Rm(crate::containers::RmArgs),
    /// Wait until front-end containers stop; print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print front-end containers' config and state as JSON (docker's fields)
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach to a running front-end container until it exits (exit with its code) or the
    /// detach keys: its output, its terminal (-t), its stdin (-i)
    Attach {
        /// The keys that detach and leave the container running (docker's ctrl-p,ctrl-q)
        #[arg(long, default_value = "ctrl-p,ctrl-q")]
        detach_keys: String,
        /// Do not pass stdin to the container
        #[arg(long)]
        no_stdin: bool,
        container: String,
    },
    /// Front-end containers as a group
    Container {
        #[command(subcommand)]
        cmd: crate::containers::ContainerCmd,
    },
    /// Print what this husk and this host support, as the OCI features JSON
    Features,
    /// Load images from a `docker save` archive or an oci-archive
    Load(crate::images::LoadArgs),
    /// List images
    Images(crate::images::ImagesArgs),
    /// Remove images (refused while a container uses one)
    Rmi(crate::images::RmiArgs),
    /// Give an image another name: husk tag SRC DST
    Tag { source: String, target: String },
    /// Manage images: inspect, prune, ls, rm
    #[command(subcommand)]
    Image(crate::images::ImageCmd),
    /// Pull an image from a registry: husk pull [-q] [--platform os/arch[/variant]] NAME[:TAG|@DIGEST]
    Pull(crate::images::PullArgs),
    /// Log in to a registry: the credentials are checked, then written to the auth file
    Login(crate::images::LoginArgs),
    /// Remove a registry's credentials from the auth file (--all: every registry's)
    Logout(crate::images::LogoutArgs),
    /// Write images to an archive `docker load` and OCI tools read: husk save -o FILE IMAGE...
    Save {
        #[arg(short, long, required = true)]
        output: PathBuf,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Print a shell completion script: `husk completion bash > /etc/bash_completion.d/husk`
    Completion {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Print a man page in roff, built from these same definitions: `husk man run | man -l -`
    Man {
        /// A subcommand's page (husk-run(1)); without one, husk(1)
        command: Option<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (process.terminal)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateArgs {
    pub fn opts(&self, root: &std::path::Path, id: &str) -> CreateOpts {
        CreateOpts {
            root: root.to_path_buf(),
            id: id.to_string(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            foreground: false,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            files: vec![],
            systemd_cgroup: false,
            rootfs_mount: None,
        }
    }
}

impl Cli {
    pub fn is_frontend(&self) -> bool {
        matches!(&self.cmd, Cmd::Run(r) if !r.is_oci())
    }
}

/// For a command line clap rejected: was it `husk run` without -b/--bundle?
pub fn looks_like_frontend_run() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--root" | "--log" | "--log-format" => i += 2,
            a if a.starts_with('-') => i += 1,
            "run" => {
                return !args[i..]
                    .iter()
                    .take_while(|a| *a != "--")
                    .any(|a| a == "-b" || a == "--bundle" || a.starts_with("--bundle="));
            }
            _ => return false,
        }
    }
    false
}

/// The front-end options given to `husk run` on the command line, as written (`--rootfs`).
pub fn front_end_flags(top: &clap::ArgMatches) -> Vec<String> {
    let Some(("run", m)) = top.subcommand() else {
        return vec![];
    };
    // Global options (--root, --explain, ...) show up in the subcommand's matches too.
    let global = |id: &str| top.ids().any(|g| g.as_str() == id);
    m.ids()
        .map(|id| id.as_str())
        .filter(|id| {
            !husk_frontend::NOT_FRONT_END.contains(id)
                && !global(id)
                && m.try_get_raw(id).is_ok_and(|v| v.is_some())
                && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        // RunArgs' field names are its long options with `_` for `-`.
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

/// Runs the command `cli` names. Left as one flat match of the verbs (about 110 lines): each arm
/// only hands its arguments to the code of its command, so the list reads best whole.
pub fn dispatch(cli: Cli) -> Result<i32, Error> {
    let root = &set_up(&cli)?;
    // Only create and run read it: the other commands find a container's unit in its state.
    let systemd_cgroup = cli.systemd_cgroup;
    match cli.cmd {
        Cmd::Spec { bundle, rootless } => write_spec(&bundle, rootless)?,
        Cmd::Create { c, id } => {
            let opts = CreateOpts {
                systemd_cgroup,
                rootfs_mount: None,
                ..c.opts(root, &id)
            };
            launch::launch(&opts, Mode::Create)?.finish_create()
        }
        Cmd::Start {
            attach,
            interactive,
            detach_keys,
            ids,
        } => match ids.as_slice() {
            [id] if !attach && crate::containers::is_runc(root, id) => ops::start(root, id)?,
            _ => {
                let how = attach.then_some((interactive, detach_keys.as_str()));
                return crate::containers::start(root, &ids, how);
            }
        },
        Cmd::State { id } => crate::out::line(ops::state_json(root, &id)?)?,
        Cmd::Kill {
            all,
            signal_opt,
            id,
        } => return kill(root, all, signal_opt, &id),
        Cmd::Delete { force, id } => {
            ops::delete(root, &id, force)?;
            if force {
                husk_net::reclaim_dead(root);
            }
        }
        Cmd::List { quiet, format } => print_list(root, quiet, &format)?,
        Cmd::Run(r) => {
            let r = runc_form_after_id(&r).unwrap_or(*r);
            return crate::frontend::run(root, r, systemd_cgroup);
        }
        Cmd::Network { cmd } => return crate::network::network(root, &cmd),
        Cmd::Port { container, port } => {
            return crate::network::port(root, &container, port.as_deref());
        }
        Cmd::Load(a) => crate::images::load(a)?,
        Cmd::Images(a) => crate::images::images(a)?,
        Cmd::Rmi(a) => crate::images::rmi(a)?,
        Cmd::Tag { source, target } => crate::images::tag(&source, &target)?,
        Cmd::Image(c) => crate::images::image(c)?,
        Cmd::Pull(a) => crate::images::pull(a)?,
        Cmd::Login(a) => crate::images::login(a)?,
        Cmd::Logout(a) => crate::images::logout(a)?,
        Cmd::Save { output, images } => crate::images::save(&output, &images)?,
        Cmd::Exec(mut e) => {
            if crate::containers::is_runc(root, &e.id) {
                return husk_runtime::exec::exec(&e.opts(root));
            }
            let (run, id) = crate::containers::exec_target(root, &e.id)?;
            e.id = id;
            return husk_runtime::exec::exec(&e.opts(&run));
        }
        Cmd::Logs(a) => return crate::containers::logs(root, &a),
        Cmd::Stop(a) => return crate::containers::stop(root, &a),
        Cmd::Restart(a) => return crate::containers::restart(root, &a),
        Cmd::Rm(a) => return crate::containers::rm(root, &a),
        Cmd::Wait { containers } => return crate::containers::wait(root, &containers),
        Cmd::Inspect { containers } => return crate::containers::inspect(root, &containers),
        Cmd::Attach {
            detach_keys,
            no_stdin,
            container,
        } => return crate::containers::attach(root, &container, !no_stdin, &detach_keys),
        Cmd::Container { cmd } => return crate::containers::container(root, &cmd),
        Cmd::Completion { shell } => print_completion(&shell),
        Cmd::Man { command } => print_man(command.as_deref())?,
        Cmd::Features => crate::out::line(
            serde_json::to_string_pretty(&crate::features::features())
                .map_err(|e| Error::Msg(e.to_string()))?,
        )?,
        Cmd::Pause { id } => husk_runtime::pause(root, &id)?,
        Cmd::Resume { id } => husk_runtime::resume(root, &id)?,
        Cmd::Ps {
            format,
            all,
            quiet,
            no_trunc,
            id,
            ps_args,
        } => match id {
            Some(id) => ps_runc(root, &id, &format, &ps_args)?,
            None => return crate::containers::ps(root, all, quiet, &format, no_trunc),
        },
        Cmd::Update(u) => crate::update::run(root, &u)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let every = parse_interval(&interval).ok_or_else(|| {
                Error::Msg(format!(
                    "--interval {interval}: want a duration like 5s or 500ms"
                ))
            })?;
            husk_runtime::events(root, &id, every, stats, &mut crate::out::stdout())?;
        }
    }
    Ok(0)
}

/// What every command does first: husk's own set-up from the global options (a read-only binary
/// for `exec`, --explain, --rootless), then the state root, made absolute.
fn set_up(cli: &Cli) -> Result<PathBuf, Error> {
    // `exec` first moves husk onto a read-only copy of its binary, so nothing in the container
    // can ever get a writable handle on it (CVE-2019-5736; see `reexec_from_readonly_binary`).
    // Does not return when it re-executes. create and run decide once the config is read
    // (husk-runtime's trampoline.rs): usually a cheaper way to the same guarantee.
    if matches!(cli.cmd, Cmd::Exec(_)) {
        husk_runtime::protect_binary()?;
    }
    if cli.explain {
        husk_runtime::explain::enable();
    }
    husk_runtime::caller::set_rootless(match cli.rootless.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    });
    let root = match cli.root.clone() {
        Some(r) => r,
        None => {
            let r = husk_runtime::userdirs::current_root();
            husk_runtime::userdirs::ensure_private(&r)?;
            r
        }
    };
    // State paths outlive the caller's directory (start, delete and the front end's bind
    // sources name them later), so a relative --root is made absolute here.
    std::path::absolute(&root).map_err(Error::io("resolve --root", &root))
}

/// `husk spec`: a default config.json (rootless or not) in `bundle`, never over an existing one.
fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<(), Error> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Msg(format!(
            "{}: file exists; remove it first",
            path.display()
        )));
    }
    let spec = match rootless {
        true => {
            let who = husk_runtime::caller::Caller::current();
            husk_spec::defaults::rootless_spec(who.euid, who.egid)
        }
        false => husk_spec::defaults::default_spec(),
    };
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Error::Msg(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(Error::io("write", &path))?;
    Ok(())
}

/// `husk kill`: a runc-mode container gets one signal (runc's `kill ID [SIGNAL]`), others
/// docker's `kill`.
fn kill(
    root: &std::path::Path,
    all: bool,
    signal_opt: Option<String>,
    id: &[String],
) -> Result<i32, Error> {
    if !crate::containers::is_runc(root, &id[0]) {
        let sig = signal_opt.as_deref().unwrap_or("KILL");
        return crate::containers::kill(root, id, sig);
    }
    let signal = match (signal_opt, id) {
        (Some(s), [_]) => s,
        (None, [_]) => "TERM".into(),
        (None, [_, s]) => s.clone(),
        _ => {
            return Err(Error::Msg(
                "kill ID [SIGNAL]: one runc-mode container, one signal".into(),
            ));
        }
    };
    // kill(1)'s `-9` and `-KILL`
    let name = signal.strip_prefix('-').unwrap_or(&signal);
    let sig = husk_spec::names::signal(name)
        .ok_or_else(|| Error::Msg(format!("unknown signal \"{signal}\"")))?;
    ops::kill(root, &id[0], sig, all)?;
    Ok(0)
}

/// `husk ps ID`: runc's ps, the processes of one container (runc-mode or not).
fn ps_runc(
    root: &std::path::Path,
    id: &str,
    format: &str,
    ps_args: &[String],
) -> Result<(), Error> {
    if format != "table" && format != "json" {
        return Err(Error::Msg(format!(
            "ps ID --format {format}: runc's ps takes table or json"
        )));
    }
    if crate::containers::is_runc(root, id) {
        print_ps(root, id, format, ps_args)?
    } else {
        let (run, full) = crate::containers::exec_target(root, id)?;
        print_ps(&run, &full, format, ps_args)?
    }
    Ok(())
}

fn print_completion(shell: &str) {
    use clap_complete::Shell;
    let shell = match shell {
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        _ => Shell::Bash,
    };
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "husk", &mut crate::out::stdout());
}

fn print_man(command: Option<&str>) -> Result<(), Error> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Subcommands are deferred: build them all, so each page lists its own options.
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => cmd
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| Error::Msg(format!("man {name}: no such command")))?
            // Names are &'static without clap's "string" feature; the process ends right after.
            .name(&*format!("husk-{name}").leak()),
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(Error::io("render man page", "stdout"))?;
    std::io::Write::write_all(&mut crate::out::stdout(), &out).map_err(Error::io("write", "stdout"))
}

/// `5s`, `500ms`, `1.5m`; None for anything else, zero, or past what a Duration holds.
fn parse_interval(s: &str) -> Option<std::time::Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// runc's `ps`: run ps(1) and keep the header and the lines of the container's pids.
fn print_ps(root: &std::path::Path, id: &str, format: &str, args: &[String]) -> Result<(), Error> {
    let pids = husk_runtime::pids(root, id)?;
    if format == "json" {
        crate::out::line(serde_json::to_string(&pids).map_err(|e| Error::Msg(e.to_string()))?)?;
        return Ok(());
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(Error::io("run", "ps"))?;
    if !out.status.success() {
        return Err(Error::Msg(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Msg("ps output has no PID column".into()))?;
    crate::out::line(header)?;
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            crate::out::line(l)?;
        }
    }
    Ok(())
}

fn print_list(root: &std::path::Path, quiet: bool, format: &str) -> Result<(), Error> {
    let items = ops::list(root)?;
    if quiet {
        for i in &items {
            crate::out::line(&i.state.id)?;
        }
        return Ok(());
    }
    if format == "json" {
        let v: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "ociVersion": husk_spec::OCI_VERSION,
                    "id": i.state.id,
                    "pid": if i.status == husk_runtime::state::Status::Stopped { 0 } else { i.state.pid },
                    "status": i.status.as_str(),
                    "bundle": i.state.bundle,
                    "rootfs": i.state.rootfs,
                    "created": i.state.created,
                    "annotations": i.state.annotations,
                    "owner": if i.state.owner.is_empty() { "root" } else { &i.state.owner },
                })
            })
            .collect();
        crate::out::line(serde_json::Value::Array(v))?;
        return Ok(());
    }
    crate::out::line(format_args!(
        "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    ))?;
    for i in &items {
        let pid = if i.status == husk_runtime::state::Status::Stopped {
            0
        } else {
            i.state.pid
        };
        crate::out::line(format_args!(
            "{:<20} {:<8} {:<10} {:<40} {:<31} root",
            i.state.id,
            pid,
            i.status.as_str(),
            i.state.bundle.display(),
            i.state.created
        ))?;
    }
    Ok(())
}

/// `husk run ID -b BUNDLE ...` (RunArgs::runc_after_id): parsed again as `husk run ... ID`.
fn runc_form_after_id(a: &husk_frontend::RunArgs) -> Option<husk_frontend::RunArgs> {
    if !a.runc_after_id() {
        return None;
    }
    let (id, rest) = a.positional.split_first()?;
    use clap::{CommandFactory, FromArgMatches};
    let argv = ["husk", "run"]
        .into_iter()
        .map(String::from)
        .chain(rest.iter().cloned())
        .chain([id.clone()]);
    let m = Cli::command().try_get_matches_from(argv).ok()?;
    let Cmd::Run(mut r) = Cli::from_arg_matches(&m).ok()?.cmd else {
        return None;
    };
    if r.positional != [id.clone()] {
        return None;
    }
    r.front_end_flags = front_end_flags(&m);
    r.pid_file = r.pid_file.or(a.pid_file.clone());
    r.console_socket = r.console_socket.or(a.console_socket.clone());
    r.preserve_fds = r.preserve_fds.or(a.preserve_fds);
    r.keep |= a.keep;
    r.detach |= a.detach;
    r.no_pivot |= a.no_pivot;
    r.no_new_keyring |= a.no_new_keyring;
    Some(*r)
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    /// Fuzz target: any argv through clap as `main` parses it, and a `run`'s arguments on to
    /// the front end's spec and plan (`build::build`, in memory). Refusals are fine, panics are
    /// not. The words are every subcommand and every option clap knows, values that
    /// look like what those options take, and random strings.
    #[test]
    fn fuzz_argv() {
        use clap::{CommandFactory, FromArgMatches};
        use husk_fuzz::proptest::prelude::*;
        let mut words: Vec<String> = vec![];
        let cmd = super::Cli::command();
        for sub in cmd.get_subcommands() {
            words.push(sub.get_name().to_string());
            for a in sub.get_arguments() {
                words.extend(a.get_long().map(|l| format!("--{l}")));
                words.extend(a.get_short().map(|c| format!("-{c}")));
            }
        }
        for a in cmd.get_arguments() {
            words.extend(a.get_long().map(|l| format!("--{l}")));
        }
        for w in [
            "--",
            "-",
            "-it",
            "-d",
            "--rm",
            "x",
            "it-1",
            "/",
            "/bin/true",
            "0",
            "-1",
            "1g",
            "512m",
            "0.5",
            "1:2",
            "a=b",
            "80:80",
            "127.0.0.1:8080:80/udp",
            "bridge",
            "none",
            "host",
            "/tmp:/tmp:ro",
            "tmpfs",
            "KILL",
            "9",
            "SIGTERM",
            "always",
            "on-failure:3",
            "1000:1000",
            "seccomp=unconfined",
            "apparmor=x",
            "label=disable",
            "5s",
            "1.5m",
            "{{.ID}}",
            "json",
            "table",
            "oci:/nonexistent",
            "busybox",
            "=",
            "",
        ] {
            words.push(w.to_string());
        }
        let token = prop_oneof![
            4 => prop::sample::select(words),
            1 => ".{0,12}",
        ];
        let host =
            husk_frontend::build::Host::current(std::path::PathBuf::from("/nonexistent/state"));
        husk_fuzz::fuzz("argv", prop::collection::vec(token, 0..8), |args| {
            let argv: Vec<String> = std::iter::once("husk".to_string()).chain(args).collect();
            let Ok(m) = super::Cli::command().try_get_matches_from(&argv) else {
                return;
            };
            let Ok(mut c) = super::Cli::from_arg_matches(&m) else {
                return;
            };
            if let super::Cmd::Run(r) = &mut c.cmd {
                r.front_end_flags = super::front_end_flags(&m);
                r.note_dashes(&argv);
                let _ = r.runc_only_flags();
                let mut r = r.clone();
                if !matches!(r.take_positionals(), husk_frontend::Target::Image(_)) {
                    let _ = husk_frontend::build::build(&r, "fuzz", &host);
                }
            }
        });
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_interval("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_interval("1.5m"), Some(Duration::from_secs(90)));
        // Past what a Duration holds: refused, not a panic.
        assert_eq!(parse_interval("99999999999999999999s"), None);
        assert_eq!(parse_interval("99999999999999999999999999999s"), None);
        assert_eq!(parse_interval("99999999999999999999m"), None);
        for bad in ["0s", "0.0ms", "s", "5", "5h", "-1s", "1e9s", "", ".s"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }
}
