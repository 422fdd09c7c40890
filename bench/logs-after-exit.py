#!/usr/bin/env python3
"""`logs` right after a detached container's process ended (issue 19): counts runs whose `logs`
missed the output the process wrote before it ended.

    bench/logs-after-exit.py [RUNS] [PARALLEL]     # as root; default 300 runs, 4 at once

HUSK (default: the debug build), WORK (default /tmp/husk-logs-race). Each worker loops: `run -d
--name N sh -c 'echo out' N`, waits until no live process has N in its command line (the
container's $0; what faults.rs waited for when the empty `logs` was seen), then `logs N` must
print "out". Prints the number of runs whose logs came back without it.
"""
import os
import subprocess
import time
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUSK = os.environ.get("HUSK", os.path.join(REPO, "target/x86_64-unknown-linux-musl/debug/husk"))
WORK = os.environ.get("WORK", "/tmp/husk-logs-race")


def live_naming(word):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if word.encode() in args and state not in ("Z", "X"):
            return True
    return False


def worker(w, runs, root, rootfs, bad):
    husk = [HUSK, "--root", root]
    for i in range(runs):
        name = f"race{w}x{i}"
        subprocess.run(husk + ["run", "-d", "--name", name, "--rootfs", rootfs,
                               "sh", "-c", "echo out", name], check=True, capture_output=True)
        # Until nothing of it runs (polled gently: a busy scan would compete with the race
        # it measures on two cores), at most a minute.
        deadline = time.monotonic() + 60
        while live_naming(name):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: still running after 60 s")
            time.sleep(0.002)
        out = subprocess.run(husk + ["logs", name], capture_output=True, text=True).stdout
        if out != "out\n":
            bad.append((name, out))
        subprocess.run(husk + ["rm", "-f", name], check=True, capture_output=True)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    par = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    subprocess.run(["rm", "-rf", WORK], check=True)
    rootfs = os.path.join(WORK, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    subprocess.run(["cp", "/bin/busybox", os.path.join(rootfs, "bin/busybox")], check=True)
    os.symlink("busybox", os.path.join(rootfs, "bin/sh"))
    root = os.path.join(WORK, "root")
    bad = []
    ts = [threading.Thread(target=worker, args=(w, runs // par, root, rootfs, bad)) for w in range(par)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"{runs // par * par} runs, {par} at once, load average {os.getloadavg()}: "
          f"{len(bad)} without the output {bad[:5]}")
    subprocess.run(["rm", "-rf", WORK, root + "-fe"])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
