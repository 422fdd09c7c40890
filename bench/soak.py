#!/usr/bin/env python3
"""Soak (issue 19): many sequential `husk run -b` of /bin/true on one state root; husk's and the
system's memory, fds and open files must stay flat.

    bench/soak.py [RUNS] [SAMPLES]     # as root; default 10000 runs, sampled 20 times

HUSK (default: the release build, else the debug one), SOAK_WORK (default /tmp/husk-soak),
SOAK_DROP_CACHES=1: at the end, `echo 2 > /proc/sys/vm/drop_caches` (reclaimable slab: dentries,
inodes) and one more sample, to show what of the growth the kernel gives back.
Each run's peak RSS and page faults come from wait4 (husk's own, per invocation: a leak inside
one invocation shows as a rising peak). Every RUNS/SAMPLES runs one more run is held open (its
container blocks on a pipe) to read husk's RssAnon (its heap and stacks: what a leak of husk's
grows) apart from RssFile (pages of the binary mapped, which depend on how much of it the page
cache holds), and the host is sampled: allocated file handles (/proc/sys/fs/file-nr),
MemAvailable, SReclaimable and SUnreclaim apart (dentries and inodes are reclaimable, kernel
objects that leak are not), memory cgroups alive or dying (/proc/cgroups), mounts, cgroup
directories under husk/, processes, and the state root's entries; and the slab caches that
grew most between the first and last sample. Prints a table and a verdict: husk's RssAnon and
faults must not grow, the host's leftovers (mounts, cgroups, state, processes) must stay at
their start, and SUnreclaim must not trend up beyond the noise of a shared machine. Exit status
1 when something grew.
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


def slab_bytes():
    """Bytes in use per slab cache."""
    out = {}
    with open("/proc/slabinfo") as f:
        for line in f.readlines()[2:]:
            v = line.split()
            out[v[0]] = int(v[1]) * int(v[3])
    return out


def memcgs():
    """Memory cgroups the kernel still has, removed ones not yet freed (dying) included."""
    with open("/proc/cgroups") as f:
        for line in f:
            v = line.split()
            if v[0] == "memory":
                return int(v[2])
    return 0


def held_run(husk, root, bundle, i):
    """husk's RssAnon and RssFile (KiB) while its container runs: a run whose container waits
    for its stdin to close."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(r_in, 0)
        os.dup2(w_out, 1)
        os.execv(husk, [husk, "--root", root, "run", "-b", bundle, f"soak-held-{i}"])
    os.close(r_in)
    os.close(w_out)
    if not os.read(r_out, 16):  # "ready": the container runs, husk waits for it
        sys.exit(f"the held run failed: {os.waitpid(pid, 0)}")
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, v = line.split(":", 1)
            status[k] = (v.split() or [""])[0]
    os.close(w_in)
    os.close(r_out)
    os.waitpid(pid, 0)
    return int(status["RssAnon"]), int(status["RssFile"])


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
        "sreclaim_kib": m["SReclaimable"],
        "sunreclaim_kib": m["SUnreclaim"],
        "memcgs": memcgs(),
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
    for applet in ("sh", "cat"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    held = os.path.join(work, "held")
    os.makedirs(held)
    cfg["root"]["path"] = rootfs
    cfg["process"]["args"] = ["/bin/sh", "-c", "echo ready; exec cat"]
    with open(os.path.join(held, "config.json"), "w") as f:
        json.dump(cfg, f)

    rows, errors = [], 0
    peak = {"rss_kib": [], "minflt": []}
    start = time.time()
    devnull = os.open(os.devnull, os.O_RDWR)
    for i in range(runs + 1):
        if i % every == 0:
            s = sample(root)
            s["run"] = i
            s["husk_rss_anon_kib"], s["husk_rss_file_kib"] = held_run(husk, root, held, i)
            if i == 0:
                slabs_first = slab_bytes()
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
    slabs_last = slab_bytes()
    last = rows[-1]
    if os.environ.get("SOAK_DROP_CACHES") == "1":
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")
        s = sample(root)
        s["run"] = "drop_caches=2"
        s["husk_max_rss_kib"] = s["husk_max_minflt"] = "-"
        s["husk_rss_anon_kib"], s["husk_rss_file_kib"] = held_run(husk, root, held, runs)
        rows.append(s)
        print(json.dumps(s), flush=True)

    first = rows[1] if len(rows) > 2 else rows[0]
    print(f"\n{runs} runs in {secs:.0f} s ({runs / secs:.1f}/s), errors: {errors}, load average {os.getloadavg()}")
    print("| after run | husk peak RSS KiB | husk minflt | held run's RssAnon / RssFile KiB | handles | MemAvailable KiB | SReclaimable KiB | SUnreclaim KiB | memory cgroups | mounts | cgroups | state | procs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows[1:]:
        print(f"| {r['run']} | {r['husk_max_rss_kib']} | {r['husk_max_minflt']} | {r['husk_rss_anon_kib']} / {r['husk_rss_file_kib']} | {r['handles']} | {r['mem_avail_kib']} | {r['sreclaim_kib']} | {r['sunreclaim_kib']} | {r['memcgs']} | {r['mounts']} | {r['cgroups']} | {r['state_entries']} | {r['procs']} |")
    grew = sorted(((slabs_last.get(k, 0) - v, k) for k, v in slabs_first.items()), reverse=True)
    print("slab caches that grew most (KiB, first sample to last):",
          ", ".join(f"{k} +{d // 1024}" for d, k in grew[:8] if d > 0))
    bad = []
    if errors:
        bad.append(f"{errors} runs failed")
    # husk's own memory is RssAnon; its peak RSS also counts the binary's pages that fault-around
    # maps, more of them as the page cache holds more of the binary (shown in the table).
    for k in ("husk_rss_anon_kib", "husk_max_minflt"):
        if last[k] > first[k] * 1.05 + 64:
            bad.append(f"{k} grew {first[k]} -> {last[k]}")
    for k in ("mounts", "cgroups", "state_entries"):
        if last[k] > rows[0][k]:
            bad.append(f"{k} grew {rows[0][k]} -> {last[k]}")
    # Reclaimable slab (dentries and inodes of the names each run made) is the kernel's cache;
    # what cannot be reclaimed must not grow by more than the other sessions' noise
    # (~0.5 KiB a run, or 16 MiB).
    grown = last["sunreclaim_kib"] - rows[0]["sunreclaim_kib"]
    if grown > max(16384, runs // 2):
        bad.append(f"SUnreclaim grew {grown} KiB ({grown / runs:.2f} KiB a run)")
    print("verdict:", "flat" if not bad else "; ".join(bad))
    subprocess.run(["rm", "-rf", work])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
