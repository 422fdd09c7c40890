//! `husk update`: runc's flags, or `-r FILE|-` with a linux.resources JSON object.

use husk_cgroup::resources::{BlockIo, Cpu, Memory, Pids, Resources};
use husk_runtime::Error;
use std::io::Read;
use std::path::Path;

#[derive(clap::Args, Debug, Default)]
#[command(allow_negative_numbers = true)]
pub struct UpdateArgs {
    /// JSON file with a linux.resources object (- for stdin); other flags override it
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Memory limit (e.g. 256m; -1 for unlimited)
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1 for unlimited)
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Ignored: the kernel no longer supports kernel memory limits
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

fn bytes(flag: &str, v: &str) -> Result<i64, Error> {
    if v == "-1" {
        return Ok(-1);
    }
    husk_frontend::size::parse(v).map_err(|e| Error::Msg(format!("--{flag}: {e}")))
}

pub fn resources(a: &UpdateArgs) -> Result<Resources, Error> {
    let mut r: Resources = match a.resources.as_deref() {
        None => Resources::default(),
        Some(src) => {
            let mut text = String::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(Error::io("read", "stdin"))?;
            } else {
                text = std::fs::read_to_string(src).map_err(Error::io("read", src))?;
            }
            serde_json::from_str(&text).map_err(|e| Error::Msg(format!("-r {src}: {e}")))?
        }
    };
    if a.kernel_memory.is_some() {
        husk_runtime::log::warn(
            "--kernel-memory is ignored: the kernel no longer supports kernel memory limits",
        );
    }
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let m = r.memory.get_or_insert_with(Memory::default);
        if let Some(v) = &a.memory {
            m.limit = Some(bytes("memory", v)?);
        }
        if let Some(v) = &a.memory_swap {
            m.swap = Some(bytes("memory-swap", v)?);
        }
        if let Some(v) = &a.memory_reservation {
            m.reservation = Some(bytes("memory-reservation", v)?);
        }
    }
    let cpu_set = a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_burst.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_set {
        let c = r.cpu.get_or_insert_with(Cpu::default);
        c.shares = a.cpu_shares.or(c.shares);
        c.quota = a.cpu_quota.or(c.quota);
        c.period = a.cpu_period.or(c.period);
        c.burst = a.cpu_burst.or(c.burst);
        c.cpus = a.cpuset_cpus.clone().or(c.cpus.take());
        c.mems = a.cpuset_mems.clone().or(c.mems.take());
    }
    if let Some(p) = a.pids_limit {
        r.pids = Some(Pids { limit: Some(p) });
    }
    if let Some(w) = a.blkio_weight {
        r.block_io.get_or_insert_with(BlockIo::default).weight = Some(w);
    }
    Ok(r)
}

pub fn run(root: &Path, a: &UpdateArgs) -> Result<(), Error> {
    husk_runtime::update(root, &a.id, &resources(a)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_to_resources() {
        let a = UpdateArgs {
            memory: Some("256m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some(5000),
            pids_limit: Some(-1),
            blkio_weight: Some(300),
            id: "x".into(),
            ..Default::default()
        };
        let r = resources(&a).unwrap();
        let m = r.memory.unwrap();
        assert_eq!((m.limit, m.swap), (Some(256 << 20), Some(-1)));
        assert_eq!(r.cpu.unwrap().quota, Some(5000));
        assert_eq!(r.pids.unwrap().limit, Some(-1));
        assert_eq!(r.block_io.unwrap().weight, Some(300));
        assert!(
            resources(&UpdateArgs {
                memory: Some("12x".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}
