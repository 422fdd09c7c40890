#!/usr/bin/env python3
"""Soak (issue 19): many sequential `husk run -b` of /bin/true on one state root; husk's and the
system's memory, fds and open files must stay flat.

    bench/soak.py [RUNS] [SAMPLES]     # as root; default 10000 runs, sampled 20 times

HUSK (default: the release build, else the debug one), SOAK_WORK (default /tmp/husk-soak).
Each run's peak RSS and page faults come from wait4 (husk's own, per invocation: a leak inside
one invocation shows as a rising peak); every RUNS/SAMPLES runs the host is sampled: allocated
file handles (/proc/sys/fs/file-nr), MemAvailable, Slab, SUnreclaim, mounts, cgroup
directories under husk/, processes, and the state root's entries. Prints a table and a verdict:
husk's numbers must not grow, the host's leftovers (mounts, cgroups, state, processes) must stay
at their start, and the host's memory and handles must not trend up beyond the noise of a shared
machine. Exit status 1 when something grew.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def husk_binary():
    if os.environ.get("HUSK"):
        return os.environ["HUSK"]
    for b in ("release", "debug"):
        p = os.path.join(REPO, "target/x86_64-unknown-linux-musl", b, "husk")
        if os.path.exists(p):
            return p
    sys.exit("no husk binary: cargo build --release -p husk, or set HUSK")


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def sample(root):
    m = meminfo()
    with open("/proc/sys/fs/file-nr") as f:
        handles = int(f.read().split()[0])
    with open("/proc/self/mountinfo") as f:
        mounts = sum(1 for _ in f)
    cgroups = len(glob.glob("/sys/fs/cgroup/*/husk/soak-*")) + len(glob.glob("/sys/fs/cgroup/husk/soak-*"))
    procs = sum(1 for p in os.listdir("/proc") if p.isdigit())
    return {
        "handles": handles,
        "mem_avail_kib": m["MemAvailable"],
        "slab_kib": m["Slab"],
        "sunreclaim_kib": m["SUnreclaim"],
        "mounts": mounts,
        "cgroups": cgroups,
        "procs": procs,
        "state_entries": len(os.listdir(root)) if os.path.isdir(root) else 0,
    }


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    every = max(1, runs // samples)
    husk = husk_binary()
    work = os.environ.get("SOAK_WORK", "/tmp/husk-soak")
    subprocess.run(["rm", "-rf", work], check=True)
    bundle, root = os.path.join(work, "bundle"), os.path.join(work, "state")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "dev", "sys", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    bb = "/bin/busybox"
    subprocess.run(["cp", bb, os.path.join(rootfs, "bin/busybox")], check=True)
    os.symlink("busybox", os.path.join(rootfs, "bin/true"))
    subprocess.run([husk, "spec", "-b", bundle], check=True)
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)

    rows, errors = [], 0
    peak = {"rss_kib": [], "minflt": []}
    start = time.time()
    devnull = os.open(os.devnull, os.O_RDWR)
    for i in range(runs + 1):
        if i % every == 0:
            s = sample(root)
            s["run"] = i
            s["husk_max_rss_kib"] = max(peak["rss_kib"][-every:], default=0)
            s["husk_max_minflt"] = max(peak["minflt"][-every:], default=0)
            rows.append(s)
            print(json.dumps(s), flush=True)
        if i == runs:
            break
        pid = os.fork()
        if pid == 0:
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.execv(husk, [husk, "--root", root, "run", "-b", bundle, f"soak-{i}"])
        _, status, ru = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            errors += 1
        peak["rss_kib"].append(ru.ru_maxrss)
        peak["minflt"].append(ru.ru_minflt)
    secs = time.time() - start

    first, last = rows[1] if len(rows) > 2 else rows[0], rows[-1]
    print(f"\n{runs} runs in {secs:.0f} s ({runs / secs:.1f}/s), errors: {errors}, load average {os.getloadavg()}")
    print("| sample at run | husk peak RSS KiB | husk minflt | handles | MemAvailable KiB | Slab KiB | mounts | cgroups | state | procs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows[1:]:
        print(f"| {r['run']} | {r['husk_max_rss_kib']} | {r['husk_max_minflt']} | {r['handles']} | {r['mem_avail_kib']} | {r['slab_kib']} | {r['mounts']} | {r['cgroups']} | {r['state_entries']} | {r['procs']} |")
    bad = []
    if errors:
        bad.append(f"{errors} runs failed")
    for k in ("husk_max_rss_kib", "husk_max_minflt"):
        if last[k] > first[k] * 1.05 + 64:
            bad.append(f"{k} grew {first[k]} -> {last[k]}")
    for k in ("mounts", "cgroups", "state_entries"):
        if last[k] > rows[0][k]:
            bad.append(f"{k} grew {rows[0][k]} -> {last[k]}")
    print("verdict:", "flat" if not bad else "; ".join(bad))
    subprocess.run(["rm", "-rf", work])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
