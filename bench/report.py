#!/usr/bin/env python3
"""Turn bench/run.sh's raw samples (raw.tsv) into bench/results.json and docs/benchmarks.md.

raw.tsv lines (tab separated):
  S MODE TARGET VARIANT METRIC ITER VALUE    a sample from ilbench
  F MODE TARGET VARIANT PHASE ITER MESSAGE   a failure from ilbench
  M KEY VALUE                                machine / run metadata
  R TARGET KEY VALUE                         a single resource value (binary size, strace counts)
"""
import argparse
import json
import os
import statistics
from collections import defaultdict

TARGETS = ["husk", "runc", "crun", "floor"]


def pct(xs, p):
    """Percentile with linear interpolation (numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summary(xs):
    return {
        "n": len(xs),
        "median": pct(xs, 50),
        "p10": pct(xs, 10),
        "p90": pct(xs, 90),
        "min": min(xs),
        "max": max(xs),
        "mean": statistics.fmean(xs),
    }


# (key, mode, variant, metric, label, unit)
ROWS = [
    ("run/net", "run", "net", "run_ms", "`run` /bin/true, netns", "ms"),
    ("run/nonet", "run", "nonet", "run_ms", "`run` /bin/true, no netns", "ms"),
    ("create/net", "split", "net", "create_ms", "`create`, netns", "ms"),
    ("start_wait/net", "split", "net", "start_wait_ms", "`start` + wait for exit, netns", "ms"),
    ("delete/net", "split", "net", "delete_ms", "`delete`, netns", "ms"),
    ("split_sum/net", "split", "net", "split_sum_ms", "create+start+delete sum, netns", "ms"),
    ("create/nonet", "split", "nonet", "create_ms", "`create`, no netns", "ms"),
    ("start_wait/nonet", "split", "nonet", "start_wait_ms", "`start` + wait for exit, no netns", "ms"),
    ("delete/nonet", "split", "nonet", "delete_ms", "`delete`, no netns", "ms"),
    ("split_sum/nonet", "split", "nonet", "split_sum_ms", "create+start+delete sum, no netns", "ms"),
    ("many_seq/net", "many", "net", "seq100_total_ms", "100 `run`s sequential (total)", "ms"),
    ("many_par8/net", "many", "net", "par100x8_total_ms", "100 `run`s, 8 in parallel (total)", "ms"),
    ("maxrss/net", "res", "net", "maxrss_kib", "peak RSS, max over process tree", "KiB"),
    ("minflt/net", "res", "net", "minflt", "minor page faults (tree sum)", "count"),
    ("cpu/net", "res", "net", "cpu_ms", "CPU user+sys (tree sum)", "ms"),
    ("ctxsw/net", "res", "net", "ctxsw", "context switches (tree sum)", "count"),
]


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.2f}" if v < 100 else f"{v:.0f}"
    if unit == "bytes":
        return f"{int(v):,}"
    return f"{v:.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()

    samples = defaultdict(list)
    failures = []
    meta = {}
    res = defaultdict(dict)
    with open(a.raw) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "S" and len(p) == 7:
                samples[(p[1], p[2], p[3], p[4])].append(float(p[6]))
            elif p[0] == "F" and len(p) >= 7:
                failures.append({"mode": p[1], "target": p[2], "variant": p[3], "phase": p[4],
                                 "iter": int(p[5]), "message": "\t".join(p[6:])})
            elif p[0] == "M" and len(p) >= 3:
                meta[p[1]] = "\t".join(p[2:])
            elif p[0] == "R" and len(p) >= 4:
                res[p[1]][p[2]] = p[3]

    results = {}
    for key, mode, variant, metric, label, unit in ROWS:
        row = {"label": label, "unit": unit, "mode": mode, "variant": variant, "metric": metric,
               "runtimes": {}}
        for t in TARGETS:
            xs = samples.get((mode, t, variant, metric))
            if xs:
                row["runtimes"][t] = summary(xs)
        crun = row["runtimes"].get("crun")
        for t, s in row["runtimes"].items():
            s["ratio_vs_crun"] = (s["median"] / crun["median"]) if crun and crun["median"] else None
            s["failures"] = sum(1 for x in failures
                                if x["target"] == t and x["mode"] == mode and x["variant"] == variant
                                and (mode != "many" or x["phase"] == metric))
        results[key] = row

    # single-valued resources: binary size, strace counts (median of 3 runs)
    singles = {}
    for t in TARGETS:
        r = res.get(t, {})
        d = {}
        if "binary_bytes" in r:
            d["binary_bytes"] = int(r["binary_bytes"])
            d["binary_path"] = r.get("binary_path")
        for k in ("syscalls", "syscall_errors", "forks"):
            vs = [int(r[f"{k}_{i}"]) for i in (1, 2, 3) if f"{k}_{i}" in r and r[f"{k}_{i}"].isdigit()]
            if vs:
                d[k] = statistics.median(vs)
                d[k + "_runs"] = vs
        singles[t] = d
    for k in ("binary_bytes", "syscalls", "syscall_errors", "forks"):
        c = singles.get("crun", {}).get(k)
        for t in TARGETS:
            if k in singles[t] and c:
                singles[t][k + "_ratio_vs_crun"] = singles[t][k] / c

    hf = {}
    for t in TARGETS:
        fn = os.path.join(a.work, f"hyperfine-{t}.json")
        if os.path.exists(fn):
            try:
                r = json.load(open(fn))["results"][0]
                ms = [x * 1e3 for x in r["times"]]
                hf[t] = summary(ms)
            except (OSError, KeyError, IndexError, ValueError):
                pass
    if "crun" in hf:
        for t in hf:
            hf[t]["ratio_vs_crun"] = hf[t]["median"] / hf["crun"]["median"]

    out = {"date": meta.get("date"), "machine": {k: meta.get(k) for k in (
        "cpu", "ncpu", "mem", "kernel", "os", "virt", "cgroups", "loadavg_start", "loadavg_end")},
        "versions": {k: meta.get(k) for k in ("husk_version", "husk_commit", "husk_path", "runc_version",
                                               "crun_version", "busybox")},
        "config": {k: meta.get(k) for k in ("iters", "many_iters", "res_iters", "hf_runs", "timeout_ms")},
        "results": results, "static": singles, "hyperfine_run_net": hf,
        "failures": failures,
        "notes": {k: v for k, v in meta.items() if k.startswith(("smoke_fail", "strace_fail", "hyperfine_fail", "leftover"))}}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")

    # ---------------- markdown
    L = []
    w = L.append
    w("# Benchmarks: husk vs runc vs crun vs the kernel floor")
    w("")
    w("Generated by `bench/run.sh` (do not edit by hand; rerun it). Raw numbers: `bench/results.json`.")
    w("")
    w(f"* **Date:** {meta.get('date')}")
    w(f"* **Machine:** {meta.get('cpu')}, {meta.get('ncpu')} vCPU, {meta.get('mem')} RAM, "
      f"virt: {meta.get('virt')}, kernel {meta.get('kernel')}, {meta.get('os')}, {meta.get('cgroups')}. "
      f"Load average at start / end: {meta.get('loadavg_start')} / {meta.get('loadavg_end')} "
      "(shared machine: other jobs may run concurrently).")
    w(f"* **Versions:** {meta.get('husk_version')} (git {meta.get('husk_commit')}), "
      f"{meta.get('runc_version')}, {meta.get('crun_version')}, busybox-static {meta.get('busybox')}.")
    w(f"* **Iterations:** run/split {meta.get('iters')} per target and variant (+ warmup), "
      f"100-container batches {meta.get('many_iters')} per target and mode, resources "
      f"{meta.get('res_iters')} runs, strace 3 runs, hyperfine {meta.get('hf_runs')} runs; watchdog "
      f"{meta.get('timeout_ms')} ms per command.")
    w("")
    w("## Results")
    w("")
    w("Cells: median (p10 - p90). Ratio = that runtime's median / crun's median in the same run "
      "(lower is better; < 1 is faster than crun).")
    w("")
    w("| measurement | husk | runc | crun | floor | husk / crun | runc / crun | floor / crun |")
    w("|---|---|---|---|---|---|---|---|")
    for key, mode, variant, metric, label, unit in ROWS:
        row = results[key]
        cells = []
        for t in TARGETS:
            s = row["runtimes"].get(t)
            cells.append(f"{fmt(s['median'], unit)} ({fmt(s['p10'], unit)} - {fmt(s['p90'], unit)})"
                         if s else "-")
        ratios = []
        for t in ("husk", "runc", "floor"):
            s = row["runtimes"].get(t)
            ratios.append(f"{s['ratio_vs_crun']:.2f}x" if s and s.get("ratio_vs_crun") else "-")
        u = "" if unit == "count" else f" [{unit}]"
        w(f"| {label}{u} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    for k, label, unit in (("binary_bytes", "binary size (ls -L)", "bytes"),
                           ("syscalls", "syscalls, one `run` (strace -f -c)", "count"),
                           ("syscall_errors", "  of which failed", "count"),
                           ("forks", "clone/clone3/fork/vfork calls", "count")):
        cells = []
        for t in TARGETS:
            v = singles.get(t, {}).get(k)
            cells.append(fmt(v, unit) if v is not None else "-")
        ratios = []
        for t in ("husk", "runc", "floor"):
            r = singles.get(t, {}).get(k + "_ratio_vs_crun")
            ratios.append(f"{r:.2f}x" if r is not None else "-")
        w(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    w("")
    # per-container throughput
    seq = results["many_seq/net"]["runtimes"]
    par = results["many_par8/net"]["runtimes"]
    if seq:
        w("Per container in the 100-container batches (median total / 100): " + ", ".join(
            f"{t} {seq[t]['median'] / 100:.2f} ms sequential"
            + (f" / {par[t]['median'] / 100:.2f} ms 8-parallel" if t in par else "")
            for t in TARGETS if t in seq) + ".")
        w("")
    if hf:
        w("Cross-check, back to back (not interleaved): `hyperfine -N -w 3` of `run` (netns), "
          "median (p10 - p90) ms: " + ", ".join(
              f"{t} {hf[t]['median']:.2f} ({hf[t]['p10']:.2f} - {hf[t]['p90']:.2f})"
              + (f" = {hf[t]['ratio_vs_crun']:.2f}x crun" if t != "crun" and "ratio_vs_crun" in hf[t] else "")
              for t in TARGETS if t in hf) + ".")
        w("")

    w("## Failures")
    w("")
    notes = out["notes"]
    probs = [f for f in failures]
    if not probs and not any(k.startswith(("smoke_fail", "strace_fail", "hyperfine_fail")) for k in notes):
        w("None: every command exited 0 within the watchdog.")
    else:
        counts = defaultdict(int)
        for f in probs:
            counts[(f["target"], f["mode"], f["variant"], f["phase"])] += 1
        if counts:
            w("Failed commands are dropped from the statistics above (a timed-out or failed phase drops "
              "that whole create/start/delete sample).")
            w("")
            w("| target | mode | variant | phase | count | first error (exact command and message) |")
            w("|---|---|---|---|---|---|")
            for (t, m, v, ph), n in sorted(counts.items()):
                first = next(f for f in probs if (f["target"], f["mode"], f["variant"], f["phase"]) == (t, m, v, ph))
                msg = first["message"].replace("|", "\\|")[:600]
                w(f"| {t} | {m} | {v} | {ph} | {n} | `{msg}` |")
            w("")
        for k, v in notes.items():
            if k.startswith(("smoke_fail", "strace_fail", "hyperfine_fail")):
                w(f"* {k}: `{v[:600]}`")
        w("")
    left = {k[len('leftover_'):]: v.strip() for k, v in notes.items() if k.startswith("leftover_")}
    if left:
        w("Containers still listed by each runtime at the end (`list -q`): " + ", ".join(
            f"{t}: {v or 'none'}" for t, v in left.items()) + ".")
        w("")

    w("## Method")
    w("")
    w("""* **One command:** `bench/run.sh` (as root). It installs missing packages with apt-get (runc crun
  hyperfine strace busybox-static gcc python3), builds husk (`cargo build --release -p husk`; the binary
  is copied to the work dir so a concurrent rebuild cannot swap it), compiles `bench/ilbench.c` and
  `bench/floor.c` with `gcc -O2`, builds the bundles, and runs everything inside
  `unshare -m --propagation private`.
* **Bundles:** rootfs = Debian `busybox-static` `/bin/busybox` + one symlink per applet (except
  `busybox`), empty `proc dev sys tmp`. `config.json` = `husk spec` with `terminal: false`,
  `args: ["/bin/true"]`, `ociVersion: "1.0.2-dev"` (crun 1.8.1 rejects "1.3.0"); the same file is
  used by all three runtimes. `husk spec` differs from `runc spec`: it also has a cgroup namespace
  and a read-only `cgroup` mount on `/sys/fs/cgroup` (root read-only in both). The no-netns
  bundle drops only the `network` namespace and has its own copy of the rootfs (runc refuses a
  symlinked rootfs).
* **cgroup quirk:** crun 1.8.1 refuses a cgroup v1 hybrid host whose `/sys/fs/cgroup/unified`
  lists controllers, so in the private mount namespace a tmpfs is mounted over
  `/sys/fs/cgroup/unified` and **all** runtimes (and the floor) run under that same view
  (plain cgroup v1). State dirs (`--root`) are on a tmpfs there, one per runtime.
* **Harness (`bench/ilbench.c`):** interleaved round robin: each iteration runs every
  target x variant once, with the starting target rotated per iteration. Wall time is
  CLOCK_MONOTONIC around fork + exec + wait (pidfd + poll) of the runtime command; stdout/stdin on
  /dev/null, stderr captured for error reports. Container ids are unique per command. A 5 s
  watchdog per command kills the process group, force-deletes the container, drops the sample
  and counts a failure; a non-zero exit is a failure too. The harness is a child subreaper (like
  containerd-shim/conmon), so processes a runtime leaves behind are re-parented to it and reaped.
* **Warmup** (not recorded): 5 iterations for run, 3 for split, 1 for resources, none for the
  100-container batches.
* **run:** `RT --root STATE run -b BUNDLE ID` of /bin/true; foreground `run` removes its state
  on exit for all three runtimes, so no extra `delete`.
* **split (the engine path):** `RT create --pid-file F -b BUNDLE ID` (timed), then pidfd_open on the
  pid in F (untimed), `RT start ID` timed until both `start` has exited and the container's pid
  has exited (pidfd poll), then `RT delete ID` (timed), and the sum of the three.
* **many:** one sample = wall time for 100 `run`s of the netns bundle, sequential or with at most
  8 running at once (2 vCPUs, so parallel gain is capped near 2x); batches interleaved across
  targets and both modes.
* **resources:** one `run` per sample via the same harness; peak RSS = max of `ru_maxrss` over the
  runtime command (wait4, which includes the descendants it reaped, like GNU time's %M) and the
  processes re-parented to the harness; page faults = `ru_minflt` summed the same way; CPU =
  user+sys. Includes the container's own /bin/true (static busybox).
* **syscalls:** `strace -f -c` of one `run` (netns), median of 3 runs; only counts are reported
  (strace slows everything down, its times are meaningless). Includes the container's /bin/true.
* **Binary size:** `stat -L` of the binary actually run (`ls -L` size).
* **floor (`bench/floor.c`):** clone(NEWPID|NEWNS|NEWUTS|NEWIPC[|NEWNET]) + bind the rootfs +
  pivot_root + detach old root + mount /proc + exec /bin/true + wait: the kernel work every runtime
  must do at minimum, with no config, cgroups, /dev, capabilities or seccomp.
* **Noise:** 2 shared vCPUs; wall-clock medians can move by up to ~2x between rounds under load
  (observed on this VM). Ratios against crun measured in the same interleaved run are
  the most reproducible wall-clock figure; page faults and syscall counts are the most stable
  metrics.
* **Rerun / more samples:** `BENCH_ITERS=400 bench/run.sh`; see the top of `bench/run.sh` for the
  other knobs.""")
    w("")
    with open(a.md, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
