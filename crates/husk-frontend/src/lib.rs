//! `husk run`'s front end: docker's options (`RunArgs`) and the OCI spec and plan they build,
//! in memory (`build`). The binary decides between runc's `run` and this, and launches.
#![forbid(unsafe_code)]

pub mod build;
mod devices;
mod labels;
mod lsm;
pub mod mounts;
pub mod rootless;
mod scaffold;
mod seccomp_default;
pub mod size;
mod systemd;
mod user;

use std::path::PathBuf;

pub use build::{Built, Host, build, generated_id};
pub use labels::{FOREGROUND, STOP_SIGNAL, STOP_TIMEOUT};

/// `husk run --help` ends with the grammar's rules.
const RULES: &str = "\
The first positional argument decides:
  husk run [OPTIONS] IMAGE [COMMAND [ARG...]]         an image (not supported yet)
  husk run [OPTIONS] --rootfs DIR [COMMAND [ARG...]]  DIR is the root, writable unless --read-only
  husk run [OPTIONS] [-- COMMAND [ARG...]]            the embedded default: the host's root, read-only
As in docker, everything after the first positional argument is the command, options included
(`husk run --rootfs r ls -la` runs `ls -la`). Without an image or --rootfs, write `--` before the
command: a command before `--` would be read as an image. Without a command: the image's, or
$SHELL on the embedded default, or /bin/sh.

runc's `run` (what engines call) is selected by -b/--bundle only:
  husk run -b BUNDLE [-d] [--keep] [--pid-file F] [--console-socket S] [--preserve-fds N] ID
Its options cannot be mixed with the front end's.";

/// Run a container: docker's `run` (the daemonless front end), or with -b/--bundle runc's `run ID`
#[derive(clap::Args, Debug, Clone, Default)]
// No group: `front_end_flags` lists what was given by argument id.
#[group(skip)]
#[command(
    disable_help_flag = true,
    allow_negative_numbers = true,
    override_usage = "husk run [OPTIONS] [IMAGE | --rootfs DIR] [COMMAND [ARG...]]\n       husk run [OPTIONS] [--] [COMMAND [ARG...]]\n       husk run -b BUNDLE [runc's run options] ID",
    after_help = RULES
)]
pub struct RunArgs {
    /// runc's `run ID` on this bundle directory (engines' form); none of the front end's options
    #[arg(short, long, help_heading = RUNC)]
    pub bundle: Option<PathBuf>,
    /// Write init's pid to this file
    #[arg(long = "pid-file", help_heading = RUNC)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to
    #[arg(long = "console-socket", help_heading = RUNC)]
    pub console_socket: Option<PathBuf>,
    /// Keep the container's state after it exits
    #[arg(long, help_heading = RUNC)]
    pub keep: bool,
    /// Pass this many extra fds (from 3 on)
    #[arg(long = "preserve-fds", help_heading = RUNC)]
    pub preserve_fds: Option<u32>,
    /// MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot", help_heading = RUNC)]
    pub no_pivot: bool,
    /// Do not create a session keyring
    #[arg(long = "no-new-keyring", help_heading = RUNC)]
    pub no_new_keyring: bool,
    /// Return once the container runs: print its id; `husk ps`, `logs`, `stop`, `rm` manage it
    #[arg(short, long)]
    pub detach: bool,
    /// Keys that detach a foreground `-i` run, leaving the container running (docker's syntax:
    /// ctrl-p,ctrl-q). The run then goes through a monitor, as `run -d` + `attach`
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Pass the signals husk receives to the container (default true, as docker's; a run with a
    /// terminal passes them either way unless it goes through a monitor). false: the run goes
    /// through a monitor and a signal ends only husk, the container going on
    #[arg(long = "sig-proxy", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: Option<bool>,

    // --- the front end (docker's names) ---
    /// Root directory (default: the host's filesystem, read-only)
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Container name (default: generated)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (K=V, or K to copy it from here)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read K=V lines from a file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// uid[:gid] or name[:group] (names from the root's /etc/passwd and /etc/group)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount SRC:DST[:ro|rw]
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: DST[:opts]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Make the root read-only (--rootfs; the host root is always read-only)
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Resource limit: name=soft[:hard], e.g. nofile=1024:2048
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add a capability (or ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// All capabilities, no masked or read-only paths
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges | seccomp=unconfined | seccomp=FILE
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// none (own network namespace with loopback; the default with --rootfs and the host's
    /// root), bridge (a veth on the husk0 bridge with an address, a default route and NAT; needs
    /// root; the default for images), NAME (a network of `husk network create`),
    /// container:NAME (another running container's), or host
    #[arg(long, visible_alias = "net")]
    pub network: Option<String>,
    /// Publish container ports: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], ports or ranges
    /// (8000-8002:80-82); without a host port, a free one (`husk port NAME` shows it)
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes (ExposedPorts) on free host ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// The image's ExposedPorts keys (`80/tcp`), set when an image is run: what -P publishes
    #[arg(skip)]
    pub exposed: Vec<String>,
    /// An ordinary user's image root: overlayfs mounted nowhere (made in a user namespace of its
    /// own, husk_image::overlay). The front end reads the root through it (`/proc/self/fd/N`);
    /// init attaches it at `--rootfs`, the empty directory it stands for.
    #[arg(skip)]
    pub root_mount: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// Another name for the container on a named network (the others' /etc/hosts)
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its bridge or named network
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// The container's MAC address on its bridge or named network
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Remove the container when it exits (a foreground container always is)
    #[arg(long)]
    pub rm: bool,
    /// With -d: no, on-failure[:MAX-RETRIES], always or unless-stopped (its monitor restarts it)
    #[arg(long)]
    pub restart: Option<String>,
    /// Keep stdin attached (without it the container reads /dev/null)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run a tiny init as pid 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// systemd as pid 1 (podman's): true (the default) when the command is /sbin/init,
    /// /usr/sbin/init, /usr/local/sbin/init or a program named systemd,
    /// always, or false: tmpfs /run, /run/lock, /tmp, a writable /sys/fs/cgroup,
    /// container=husk, stop signal SIGRTMIN+3
    #[arg(long, value_parser = ["true", "false", "always"])]
    pub systemd: Option<String>,
    /// Memory limit (b, k, m, g: bytes, KiB, MiB, GiB)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// CPUs (fractional), e.g. 1.5
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs allowed, e.g. 0-1
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Memory soft limit (reclaimed first under pressure)
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Do not OOM-kill the container's processes at the memory limit (cgroup v1 only)
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// CPU CFS quota in µs per period
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in µs (default 100000)
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Run this program instead of the default; the command becomes its arguments
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull IMAGE from its registry: missing (the default: when not stored), always, never
    #[arg(long, value_parser = ["missing", "always", "never"])]
    pub pull: Option<String>,
    /// The platform to pull: os/arch[/variant] (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Verify the registry's TLS certificate when pulling (default: yes, except for localhost)
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// Print nothing while pulling the image
    #[arg(short, long)]
    pub quiet: bool,
    /// pid namespace: host shares the host's (default: a new one)
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC namespace: host or private (default: a new one)
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace: host shares the host's hostname (default: a new one)
    #[arg(long)]
    pub uts: Option<String>,
    /// cgroup namespace: host or private (default: private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// User namespace: host (root's default), or keep-id when an ordinary user runs husk (the
    /// default then maps the user to root, see README's rootless section)
    #[arg(long)]
    pub userns: Option<String>,
    /// Namespaced kernel parameter, e.g. net.ipv4.ip_forward=1
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Supplementary group (number, or name from the root's /etc/group)
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Write the container's id to this file (which must not exist)
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Signal that stops the container (default SIGTERM), recorded in its annotations
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL, recorded in its annotations
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Metadata KEY=VALUE, kept in the container's annotations
    #[arg(short = 'l', long)]
    pub label: Vec<String>,
    /// Read KEY=VALUE labels from a file
    #[arg(long = "label-file")]
    pub label_file: Vec<PathBuf>,
    /// Add a line to /etc/hosts: HOST:IP (--rootfs)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// type=bind|tmpfs,source=...,target=...[,readonly][,bind-propagation=...][,tmpfs-size=...]
    #[arg(long)]
    pub mount: Vec<String>,
    /// Add a host device: HOST[:CONTAINER][:rwm]
    #[arg(long)]
    pub device: Vec<String>,
    /// OOM killer preference, -1000 (never) to 1000 (first)
    #[arg(long = "oom-score-adj")]
    pub oom_score_adj: Option<i32>,
    /// Swappiness of the container's memory, 0 to 100 (cgroup v1)
    #[arg(long = "memory-swappiness")]
    pub memory_swappiness: Option<u64>,
    /// Memory nodes allowed, e.g. 0-1
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block IO weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// The cgroup to create the container's under (default /husk)
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// DNS server for /etc/resolv.conf (--rootfs)
    #[arg(long)]
    pub dns: Vec<String>,
    /// DNS search domain for /etc/resolv.conf (--rootfs)
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// DNS option for /etc/resolv.conf (--rootfs)
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// IMAGE (or with --rootfs or after `--`, the command) and the command's arguments; with -b,
    /// the container id
    #[arg(trailing_var_arg = true, value_name = "IMAGE | COMMAND")]
    pub positional: Vec<String>,
    /// Whether `--` came right before the positionals (see `note_dashes`)
    #[arg(skip)]
    pub dashes_first: bool,

    /// The command to run (from the positionals, see `take_positionals`); empty: the default
    #[arg(skip)]
    pub args: Vec<String>,
    /// The image config's Env, under --env-file and -e (set by husk-image for `run IMAGE`)
    #[arg(skip)]
    pub image_env: Vec<String>,
    /// The image's anonymous VOLUMEs, mounted before -v, --tmpfs and --mount so one of those
    /// under a VOLUME mounts inside it, as docker's does (set for `run IMAGE`)
    #[arg(skip)]
    pub image_volumes: Vec<husk_spec::config::Mount>,
    /// The image config's Labels, under --label-file and --label (set for `run IMAGE`)
    #[arg(skip)]
    pub image_labels: Vec<(String, String)>,
    /// The front-end options given on the command line, as written (`--rootfs`), filled in by the
    /// CLI from clap's matches: runc's `run -b` refuses them by name
    #[arg(skip)]
    pub front_end_flags: Vec<String>,
}

const RUNC: &str = "runc's run (with -b/--bundle only)";

/// The run's root, named by the first positional argument (see `RULES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No image, no --rootfs: the host's root, read-only.
    Embedded,
    Rootfs(PathBuf),
    Image(String),
}

impl RunArgs {
    /// Splits the positionals into the root and the command (`args`), by docker's rule: the first
    /// positional is the image unless --rootfs names the root; everything after it is the command.
    pub fn take_positionals(&mut self) -> Target {
        let mut words = std::mem::take(&mut self.positional);
        let target = match &self.rootfs {
            Some(r) => Target::Rootfs(r.clone()),
            None if words.is_empty() || self.dashes_first => Target::Embedded,
            None => Target::Image(words.remove(0)),
        };
        self.args = words;
        target
    }

    /// clap drops the `--` that ends the options, and then `husk run -- ls` and `husk run ls`
    /// parse the same: tell them apart on the raw command line. The positionals are its tail
    /// (everything after the first one is taken as is), so `--` is the word just before them.
    pub fn note_dashes(&mut self, argv: &[String]) {
        let n = self.positional.len();
        self.dashes_first = n > 0
            && argv.len() > n
            && argv[argv.len() - n..] == self.positional[..]
            && argv[argv.len() - n - 1] == "--";
    }

    /// runc's flags that mean nothing without -b (`-d` is the front end's too).
    pub fn runc_only_flags(&self) -> Vec<&'static str> {
        let mut v = vec![];
        for (set, name) in [
            (self.pid_file.is_some(), "--pid-file"),
            (self.console_socket.is_some(), "--console-socket"),
            (self.keep, "--keep"),
            (self.preserve_fds.is_some(), "--preserve-fds"),
            (self.no_pivot, "--no-pivot"),
            (self.no_new_keyring, "--no-new-keyring"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

/// The ids of `RunArgs`' arguments that are runc's or shared: every other one given on the
/// command line is a front-end option, which -b refuses.
pub const NOT_FRONT_END: &[&str] = &[
    "bundle",
    "pid_file",
    "console_socket",
    "keep",
    "preserve_fds",
    "no_pivot",
    "no_new_keyring",
    "detach",
    "help",
    "positional",
];

impl RunArgs {
    /// -b/--bundle, and only it, selects runc's `run ID` (before or after the id).
    pub fn is_oci(&self) -> bool {
        self.bundle.is_some() || self.runc_after_id()
    }

    /// runc also takes its options after the id (`runc run ID --bundle B`): an id followed by
    /// words that include -b/--bundle. (An image's command cannot start with -b: docker would
    /// run a program named `-b`.) The binary parses the words again to be sure.
    pub fn runc_after_id(&self) -> bool {
        let bundle = |w: &String| w == "-b" || w == "--bundle" || w.starts_with("--bundle=");
        self.bundle.is_none()
            && !self.dashes_first
            && self.rootfs.is_none()
            && self.front_end_flags.is_empty()
            && self.positional.get(1).is_some_and(|w| w.starts_with('-'))
            && self.positional.iter().skip(1).any(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n`: how many words at the end clap took as positionals.
    fn parsed(argv: &[&str], n: usize) -> (Target, Vec<String>) {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut a = RunArgs {
            positional: argv[argv.len() - n..].to_vec(),
            rootfs: argv.contains(&"--rootfs".to_string()).then(|| "r".into()),
            ..Default::default()
        };
        a.note_dashes(&argv);
        let t = a.take_positionals();
        (t, a.args)
    }

    #[test]
    fn the_first_positional_decides() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parsed(&["husk", "run", "--", "ls", "-la"], 2),
            (Target::Embedded, v(&["ls", "-la"]))
        );
        assert_eq!(
            parsed(&["husk", "run", "alpine", "ls"], 2),
            (Target::Image("alpine".into()), v(&["ls"]))
        );
        assert_eq!(
            parsed(&["husk", "run", "--rootfs", "r", "--", "ls", "-la"], 2),
            (Target::Rootfs("r".into()), v(&["ls", "-la"]))
        );
        assert_eq!(
            parsed(&["husk", "run", "--rootfs", "r", "ls", "-la"], 2),
            (Target::Rootfs("r".into()), v(&["ls", "-la"]))
        );
        assert_eq!(parsed(&["husk", "run"], 0), (Target::Embedded, vec![]));
        // Only the first `--` ends the options; a second one is the command's.
        assert_eq!(
            parsed(&["husk", "run", "--", "--", "ls"], 2),
            (Target::Embedded, v(&["--", "ls"]))
        );
    }
}
