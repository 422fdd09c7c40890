#!/usr/bin/env python3
"""The CRI calls a kubelet makes, sent to containerd's CRI plugin once per runtime handler (runc,
then husk, under the same containerd), each result checked against what runc gives.

Run by scripts/test-cri.sh, which starts containerd, the registry and the CNI config, and passes
their addresses. Each step records a normalised observation per handler (no ids, times or IPs,
only what must be equal); a step passes when runc's observation is what the step expects (or, for
steps without a fixed answer, is not an error) and husk's equals runc's. Prints PASS/FAIL lines and
closes with "N passed, N failed".

api.proto beside this file is Kubernetes' CRI v1 API (k8s.io/cri-api, runtime.v1) as the k8s-cri
0.11.0 crate ships it; the Python code is generated from it at test time.
"""
import argparse
import json
import os
import re
import sys
import time
import uuid

import grpc
import websocket

import api_pb2 as pb
import api_pb2_grpc as rpc

CALL_TIMEOUT = 120  # seconds for one gRPC call; a hung runtime fails the step, not the script
WAIT = 30  # seconds to wait for a state the container reaches by itself


def err_text(e):
    if isinstance(e, grpc.RpcError):
        return f"error: {e.code().name}: {e.details()}"
    return f"error: {type(e).__name__}: {e}"


def is_err(v):
    return isinstance(v, str) and v.startswith("error:")


class Run:
    """One handler's pass through the scenario: its observations, in step order."""

    def __init__(self, cri, handler, args):
        self.rt, self.img = cri
        self.h = handler
        self.a = args
        self.obs = {}
        self.order = []

    def rec(self, step, fn):
        """Calls fn; records its value (or the error) under step; returns the value or None."""
        try:
            v = fn()
            out = v
        except Exception as e:  # noqa: BLE001 - every failure is an observation
            v, out = None, err_text(e)
        self.order.append(step)
        self.obs[step] = out
        return v

    def call(self, name, req, timeout=CALL_TIMEOUT):
        return getattr(self.rt, name)(req, timeout=timeout)

    # -- helpers ----------------------------------------------------------------------------
    def sandbox_config(self, kind, network_mode, sec=None, sysctls=None):
        uid = str(uuid.uuid4())
        logdir = os.path.join(self.a.tmp, "logs", f"{self.h}-{kind}")
        os.makedirs(logdir, exist_ok=True)
        ctx = pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=network_mode, pid=pb.CONTAINER, ipc=pb.POD)
        )
        if sec:
            sec(ctx)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"{kind}-{self.h}", uid=uid, namespace="hcri", attempt=0),
            hostname="" if network_mode == pb.NODE else f"{kind}-{self.h}",
            log_directory=logdir,
            labels={"hcri": self.h},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"/{self.a.cgroup_root}/pod{uid}", security_context=ctx, sysctls=sysctls or {}
            ),
        )

    def run_pod(self, cfg):
        r = self.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg, runtime_handler=self.h))
        return r.pod_sandbox_id

    def create(self, pod, pcfg, name, command, **kw):
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=0),
            image=pb.ImageSpec(image=self.a.image),
            command=command,
            log_path=f"{name}.log",
            **kw,
        )
        r = self.call("CreateContainer", pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg, sandbox_config=pcfg))
        return r.container_id

    def status(self, cid):
        return self.call("ContainerStatus", pb.ContainerStatusRequest(container_id=cid, verbose=True))

    def state(self, cid):
        s = self.status(cid).status
        return pb.ContainerState.Name(s.state)

    def wait_state(self, cid, want):
        end = time.time() + WAIT
        while True:
            s = self.status(cid).status
            if s.state == want or time.time() > end:
                return (pb.ContainerState.Name(s.state), s.exit_code, s.reason)
            time.sleep(0.1)

    def pid(self, cid):
        return json.loads(self.status(cid).info["info"])["pid"]

    def exec_sync(self, cid, cmd, timeout=0):
        r = self.call("ExecSync", pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout))
        return (r.exit_code, r.stdout.decode(), r.stderr.decode())

    def log_has(self, path, pattern):
        """Polls a CRI log file until a line's message matches pattern; returns True or False."""
        end = time.time() + WAIT
        while time.time() < end:
            try:
                with open(path) as f:
                    for line in f:
                        # CRI log format: RFC3339Nano time, stream, P(artial)/F(ull) tag, message
                        m = re.match(r"^\S+ (stdout|stderr) [PF] (.*)$", line.rstrip("\n"))
                        if m and re.search(pattern, m.group(2)):
                            return True
            except FileNotFoundError:
                pass
            time.sleep(0.1)
        return False

    def cgroup_values(self, cid):
        """memory limit, cpu quota/period and weight of the container's cgroup as the host sees it."""
        pid = self.pid(cid)
        paths = {}
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    paths[c] = path
        if "memory" in paths:  # v1 or hybrid
            mem = f"/sys/fs/cgroup/memory{paths['memory']}"
            cpu = f"/sys/fs/cgroup/cpu{paths['cpu']}"  # a directory or a link to cpu,cpuacct
            rd = lambda p: open(p).read().strip()  # noqa: E731
            return {
                "cpuset": rd(f"/sys/fs/cgroup/cpuset{paths['cpuset']}/cpuset.cpus"),
                "memory": rd(f"{mem}/memory.limit_in_bytes"),
                "cpu": f"{rd(f'{cpu}/cpu.cfs_quota_us')} {rd(f'{cpu}/cpu.cfs_period_us')}",
                "shares": rd(f"{cpu}/cpu.shares"),
            }
        base = f"/sys/fs/cgroup{paths['']}"
        rd = lambda n: open(f"{base}/{n}").read().strip()  # noqa: E731
        return {"cpuset": rd("cpuset.cpus"), "memory": rd("memory.max"), "cpu": rd("cpu.max"), "weight": rd("cpu.weight")}

    def stream(self, url, send=None, until=None):
        """Talks to containerd's streaming server over a websocket (v4.channel.k8s.io: one channel
        byte, then data; 1 stdout, 2 stderr, 3 the final status as JSON). Returns (stdout, stderr,
        status); with until, closes once stdout matches it."""
        ws = websocket.create_connection(
            re.sub(r"^http", "ws", url), subprotocols=["v4.channel.k8s.io"], timeout=WAIT
        )
        out, errb, status = b"", b"", None
        try:
            if send is not None:
                ws.send_binary(b"\x00" + send)
            while True:
                try:
                    op, data = ws.recv_data()
                except websocket.WebSocketConnectionClosedException:
                    break
                if op == websocket.ABNF.OPCODE_CLOSE:
                    break
                if not data:
                    continue
                ch, payload = data[0], data[1:]
                if ch == 1:
                    out += payload
                elif ch == 2:
                    errb += payload
                elif ch == 3 and payload:
                    status = json.loads(payload)
                if until and re.search(until, out.decode()):
                    break
        finally:
            ws.close()
        return out.decode(), errb.decode(), status


def exit_of(status):
    """The exit code in a streaming status message (Success is 0)."""
    if status is None:
        return None
    if status.get("status") == "Success":
        return 0
    for c in status.get("details", {}).get("causes", []):
        if c.get("reason") == "ExitCode":
            return int(c["message"])
    return status.get("message")


def scenario(r):
    a = r.a
    # ---------------------------------------------------------------- host-network pod
    share = os.path.join(a.tmp, "share", r.h)
    os.makedirs(share, exist_ok=True)
    pcfg = r.sandbox_config("host", pb.NODE)
    ids = {}

    def run_host():
        ids["pod"] = r.run_pod(pcfg)
        return "ok"

    r.rec("RunPodSandbox (host network)", run_host)
    pod = ids.get("pod", "")
    r.rec(
        "PodSandboxStatus (host network)",
        lambda: pb.PodSandboxState.Name(
            r.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status.state
        ),
    )
    main_script = (
        "echo started; trap 'echo term; exit 42' TERM; "
        "while :; do if [ -e /data/say ]; then cat /data/say; rm -f /data/say; fi; sleep 0.1; done"
    )
    sec = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["MKNOD"]),
        run_as_user=pb.Int64Value(value=0),
    )
    res = pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 << 20, oom_score_adj=500,
        cpuset_cpus="0",
    )

    def create_main():
        ids["main"] = r.create(
            pod, pcfg, "main", ["sh", "-c", main_script],
            envs=[pb.KeyValue(key="FOO", value="from-cri")],
            mounts=[
                pb.Mount(container_path="/data", host_path=share),
                pb.Mount(container_path="/ro", host_path=a.ro_dir, readonly=True),
            ],
            linux=pb.LinuxContainerConfig(resources=res, security_context=sec),
        )
        return "ok"

    r.rec("CreateContainer (resources, env, mounts, capabilities)", create_main)
    c = ids.get("main", "")
    r.rec("ContainerStatus after create", lambda: r.state(c))
    r.rec("StartContainer", lambda: r.call("StartContainer", pb.StartContainerRequest(container_id=c)) and "ok")
    r.rec("ContainerStatus after start", lambda: r.state(c))
    log = os.path.join(pcfg.log_directory, "main.log")
    r.rec("container log (CRI format) has the first line", lambda: r.log_has(log, r"^started$"))
    r.rec(
        "ExecSync: env, read-only mount, bind mount, uid",
        lambda: r.exec_sync(c, ["sh", "-c", "echo $FOO; cat /ro/hello; id -u; echo w >/data/w && cat /data/w; "
                                 "touch /ro/x 2>&1 | sed 's/.*: //'"]),
    )
    r.rec(
        "ExecSync: capabilities (NET_ADMIN added, MKNOD dropped)",
        lambda: r.exec_sync(c, ["grep", "-E", "^Cap(Eff|Bnd)", "/proc/self/status"]),
    )
    r.rec("ExecSync: exit code and both streams",
          lambda: r.exec_sync(c, ["sh", "-c", "echo out; echo err >&2; exit 3"]))

    def missing():
        try:
            return f"exit {r.exec_sync(c, ['/nonexistent'])[0]}"
        except grpc.RpcError as e:
            # the runtime's own words differ; the part engines show the user must be there
            return ("error", "stat /nonexistent: no such file or directory" in e.details())

    r.rec("ExecSync: missing binary", missing)

    def exec_timeout():
        t0 = time.time()
        try:
            v = r.exec_sync(c, ["sleep", "60"], timeout=1)
        except grpc.RpcError as e:
            v = e.code().name
        return (str(v), time.time() - t0 < 30)

    r.rec("ExecSync: timeout ends the process", exec_timeout)

    def exec_stream():
        url = r.call("Exec", pb.ExecRequest(container_id=c, cmd=["sh", "-c", "echo exec-out; echo exec-err >&2; exit 7"],
                                            stdout=True, stderr=True)).url
        out, errs, st = r.stream(url)
        return (out, errs, exit_of(st))

    r.rec("Exec (websocket stream)", exec_stream)

    def exec_tty():
        url = r.call("Exec", pb.ExecRequest(container_id=c, cmd=["sh"], tty=True, stdin=True, stdout=True)).url
        out, _, st = r.stream(url, send=b"tty; exit 3\n")
        return (bool(re.search(r"^/dev/pts/[0-9]+\r?$", out, re.M)), exit_of(st))

    r.rec("Exec with a tty (websocket stream, stdin)", exec_tty)
    r.rec("ContainerStats",
          lambda: (lambda s: (s.memory.working_set_bytes.value > 0, s.cpu.usage_core_nano_seconds.value > 0))(
              r.call("ContainerStats", pb.ContainerStatsRequest(container_id=c)).stats))
    r.rec("ListContainerStats (pod)",
          lambda: len(r.call("ListContainerStats", pb.ListContainerStatsRequest(
              filter=pb.ContainerStatsFilter(pod_sandbox_id=pod))).stats))
    r.rec("cgroup values from CreateContainer", lambda: r.cgroup_values(c))
    r.rec("oom_score_adj from CreateContainer", lambda: open(f"/proc/{r.pid(c)}/oom_score_adj").read().strip())
    r.rec("UpdateContainerResources", lambda: r.call("UpdateContainerResources", pb.UpdateContainerResourcesRequest(
        container_id=c, linux=pb.LinuxContainerResources(
            cpu_period=100000, cpu_quota=20000, cpu_shares=256, memory_limit_in_bytes=128 << 20))) and "ok")
    r.rec("cgroup values after UpdateContainerResources", lambda: r.cgroup_values(c))

    def reopen():
        os.rename(log, log + ".1")
        r.call("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=c))
        with open(os.path.join(share, "say.tmp"), "w") as f:
            f.write("after-reopen\n")
        os.rename(os.path.join(share, "say.tmp"), os.path.join(share, "say"))
        return r.log_has(log, r"^after-reopen$")

    r.rec("ReopenContainerLog (new file gets the output)", reopen)

    # attach: a container reading stdin
    def attach():
        ids["cat"] = r.create(pod, pcfg, "cat", ["sh", "-c", 'while read l; do echo "got $l"; done'], stdin=True)
        r.call("StartContainer", pb.StartContainerRequest(container_id=ids["cat"]))
        url = r.call("Attach", pb.AttachRequest(container_id=ids["cat"], stdin=True, stdout=True)).url
        return r.stream(url, send=b"hello\n", until=r"got hello\n")[0]

    r.rec("Attach (websocket stream, stdin to stdout)", attach)

    def attach_tty():
        ids["tty"] = r.create(pod, pcfg, "tty", ["sh", "-c", 'tty; while read l; do echo "got $l"; done'],
                              stdin=True, tty=True)
        r.call("StartContainer", pb.StartContainerRequest(container_id=ids["tty"]))
        url = r.call("Attach", pb.AttachRequest(container_id=ids["tty"], stdin=True, stdout=True, tty=True)).url
        out = r.stream(url, send=b"hello\n", until=r"got hello")[0]
        seen = r.log_has(os.path.join(pcfg.log_directory, "tty.log"), r"^/dev/pts/[0-9]+\r?$")
        return ("got hello" in out, seen)

    r.rec("CreateContainer with a tty, Attach (websocket stream)", attach_tty)
    r.rec("RemoveContainer of a running container (tty)",
          lambda: r.call("RemoveContainer", pb.RemoveContainerRequest(container_id=ids.get("tty", ""))) and "ok")

    # a container that exits by itself, then the kubelet's stop and remove of it
    def quick():
        ids["quick"] = r.create(pod, pcfg, "quick", ["sh", "-c", "exit 5"])
        r.call("StartContainer", pb.StartContainerRequest(container_id=ids["quick"]))
        return r.wait_state(ids["quick"], pb.CONTAINER_EXITED)

    r.rec("container exits by itself: ContainerStatus", quick)
    q = ids.get("quick", "")
    r.rec("StopContainer of an exited container",
          lambda: r.call("StopContainer", pb.StopContainerRequest(container_id=q, timeout=10)) and "ok")
    r.rec("RemoveContainer of an exited container",
          lambda: r.call("RemoveContainer", pb.RemoveContainerRequest(container_id=q)) and "ok")

    r.rec("StopContainer (SIGTERM, trap exits 42)",
          lambda: r.call("StopContainer", pb.StopContainerRequest(container_id=c, timeout=20)) and "ok")
    r.rec("ContainerStatus after stop", lambda: r.wait_state(c, pb.CONTAINER_EXITED))
    r.rec("container log has the trap's line", lambda: r.log_has(log, r"^term$"))
    r.rec("StopContainer again (already exited)",
          lambda: r.call("StopContainer", pb.StopContainerRequest(container_id=c, timeout=20)) and "ok")
    r.rec("RemoveContainer", lambda: r.call("RemoveContainer", pb.RemoveContainerRequest(container_id=c)) and "ok")
    r.rec("ListContainers after remove (pod)",
          lambda: sorted(x.metadata.name for x in r.call("ListContainers", pb.ListContainersRequest(
              filter=pb.ContainerFilter(pod_sandbox_id=pod))).containers))
    # the cat container still runs: StopPodSandbox must stop it
    r.rec("StopPodSandbox (a container still running)",
          lambda: r.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod)) and "ok")
    r.rec("ContainerStatus of the pod's container after StopPodSandbox",
          lambda: r.wait_state(ids.get("cat", ""), pb.CONTAINER_EXITED)[0])
    r.rec("StopPodSandbox again",
          lambda: r.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod)) and "ok")
    r.rec("RemovePodSandbox (host network)",
          lambda: r.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod)) and "ok")
    r.rec("ListPodSandbox after remove",
          lambda: pod in [p.id for p in r.call("ListPodSandbox", pb.ListPodSandboxRequest()).items])

    # ---------------------------------------------------------------- restricted pod, CNI network
    def restricted_sandbox(ctx):
        ctx.run_as_user.value = 1000
        ctx.run_as_group.value = 1000
        ctx.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        # shareProcessNamespace: the containers join the pause's pid namespace by path
        ctx.namespace_options.pid = pb.POD

    # a pod's safe sysctls: containerd puts them in every container's spec, so they are written
    # again in namespaces the container joins (network: the pause's netns; ipc: the pause's)
    pod_sysctls = {"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1"}
    pcfg2 = r.sandbox_config("net", pb.POD, restricted_sandbox, pod_sysctls)

    def run_net():
        ids["pod2"] = r.run_pod(pcfg2)
        return "ok"

    r.rec("RunPodSandbox (pod network: CNI bridge; runAsUser 1000, seccomp RuntimeDefault)", run_net)
    pod2 = ids.get("pod2", "")
    ips = {}

    def net_status():
        s = r.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod2)).status
        ips["pod"] = s.network.ip
        return (pb.PodSandboxState.Name(s.state), s.network.ip.startswith(a.subnet_prefix))

    r.rec("PodSandboxStatus (pod network): ready, IP from the bridge's range", net_status)
    rsec = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(drop_capabilities=["ALL"]),
        run_as_user=pb.Int64Value(value=1000),
        run_as_group=pb.Int64Value(value=1000),
        supplemental_groups=[3000],  # what a pod's fsGroup becomes
        readonly_rootfs=True,
        no_new_privs=True,
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
        namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.POD, ipc=pb.POD),
    )

    def create_restricted():
        ids["r"] = r.create(
            pod2, pcfg2, "restricted", ["sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done"],
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20, cpu_shares=2),
                security_context=rsec,
            ),
        )
        return "ok"

    r.rec("CreateContainer (restricted: uid 1000, drop ALL, read-only root, seccomp, no_new_privs)", create_restricted)
    rc = ids.get("r", "")
    r.rec("StartContainer (restricted)",
          lambda: r.call("StartContainer", pb.StartContainerRequest(container_id=rc)) and "ok")
    r.rec("ContainerStatus (restricted) after start", lambda: r.state(rc))
    r.rec(
        "ExecSync (restricted): ids, groups, capabilities, no_new_privs, seccomp, read-only root",
        lambda: r.exec_sync(rc, ["sh", "-c", "id -u; id -g; id -G; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
                                  "/proc/self/status; touch /x 2>&1 | sed 's/.*: //'"]),
    )
    r.rec(
        "ExecSync (restricted): eth0 has the pod's IP",
        lambda: (lambda o: (o[0], f"inet {ips.get('pod')}/" in o[1]))(
            r.exec_sync(rc, ["ip", "-4", "addr", "show", "eth0"])),
    )
    r.rec(
        "ExecSync (restricted): shared pid namespace, hostname, pod sysctls",
        lambda: (lambda o: (o[0], o[1].split("\n")[0], o[1].split("\n")[1] == f"net-{r.h}", o[1].split("\n")[2:]))(
            r.exec_sync(rc, ["sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; hostname; "
                                  "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced"])),
    )
    r.rec("ExecSync (restricted): unshare of a user namespace is refused",
          lambda: r.exec_sync(rc, ["sh", "-c", "unshare -U true 2>&1 | sed 's/.*: //'"]))
    r.rec("ContainerStats (restricted)",
          lambda: (lambda s: s.memory.working_set_bytes.value > 0)(
              r.call("ContainerStats", pb.ContainerStatsRequest(container_id=rc)).stats))
    r.rec("StopContainer (restricted)",
          lambda: r.call("StopContainer", pb.StopContainerRequest(container_id=rc, timeout=20)) and "ok")
    r.rec("ContainerStatus (restricted) after stop", lambda: r.wait_state(rc, pb.CONTAINER_EXITED))
    r.rec("RemoveContainer (restricted)",
          lambda: r.call("RemoveContainer", pb.RemoveContainerRequest(container_id=rc)) and "ok")
    r.rec("StopPodSandbox (pod network)",
          lambda: r.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod2)) and "ok")
    r.rec("RemovePodSandbox (pod network)",
          lambda: r.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod2)) and "ok")


# Steps with a fixed answer (checked for runc and husk alike); the rest only need runc to succeed
# and husk to agree.
EXPECT = {
    "RunPodSandbox (host network)": "ok",
    "PodSandboxStatus (host network)": "SANDBOX_READY",
    "CreateContainer (resources, env, mounts, capabilities)": "ok",
    "ContainerStatus after create": "CONTAINER_CREATED",
    "StartContainer": "ok",
    "ContainerStatus after start": "CONTAINER_RUNNING",
    "container log (CRI format) has the first line": True,
    "ExecSync: env, read-only mount, bind mount, uid": (0, "from-cri\nhello\n0\nw\nRead-only file system\n", ""),
    "ExecSync: exit code and both streams": (3, "out\n", "err\n"),
    "ExecSync: missing binary": ("error", True),
    "Exec (websocket stream)": ("exec-out\n", "exec-err\n", 7),
    "Exec with a tty (websocket stream, stdin)": (True, 3),
    "CreateContainer with a tty, Attach (websocket stream)": (True, True),
    "RemoveContainer of a running container (tty)": "ok",
    "ContainerStats": (True, True),
    "ListContainerStats (pod)": 1,
    "oom_score_adj from CreateContainer": "500",
    "UpdateContainerResources": "ok",
    "ReopenContainerLog (new file gets the output)": True,
    "Attach (websocket stream, stdin to stdout)": "got hello\n",
    "container exits by itself: ContainerStatus": ("CONTAINER_EXITED", 5, "Error"),
    "StopContainer of an exited container": "ok",
    "RemoveContainer of an exited container": "ok",
    "StopContainer (SIGTERM, trap exits 42)": "ok",
    "ContainerStatus after stop": ("CONTAINER_EXITED", 42, "Error"),
    "container log has the trap's line": True,
    "StopContainer again (already exited)": "ok",
    "RemoveContainer": "ok",
    "ListContainers after remove (pod)": ["cat"],
    "StopPodSandbox (a container still running)": "ok",
    "ContainerStatus of the pod's container after StopPodSandbox": "CONTAINER_EXITED",
    "StopPodSandbox again": "ok",
    "RemovePodSandbox (host network)": "ok",
    "ListPodSandbox after remove": False,
    "RunPodSandbox (pod network: CNI bridge; runAsUser 1000, seccomp RuntimeDefault)": "ok",
    "PodSandboxStatus (pod network): ready, IP from the bridge's range": ("SANDBOX_READY", True),
    "CreateContainer (restricted: uid 1000, drop ALL, read-only root, seccomp, no_new_privs)": "ok",
    "StartContainer (restricted)": "ok",
    "ContainerStatus (restricted) after start": "CONTAINER_RUNNING",
    "ExecSync (restricted): eth0 has the pod's IP": (0, True),
    "ExecSync (restricted): shared pid namespace, hostname, pod sysctls": (0, "/bin/sleep 2147483647 ", True, ["80", "1", ""]),
    "ContainerStats (restricted)": True,
    "StopContainer (restricted)": "ok",
    "ContainerStatus (restricted) after stop": ("CONTAINER_EXITED", 0, "Completed"),
    "RemoveContainer (restricted)": "ok",
    "StopPodSandbox (pod network)": "ok",
    "RemovePodSandbox (pod network)": "ok",
}


def norm(v):
    """Tuples and lists compare alike after a JSON round trip of neither."""
    return list(v) if isinstance(v, tuple) else v


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--ro-dir", required=True)
    p.add_argument("--cgroup-root", required=True)
    p.add_argument("--subnet-prefix", required=True)
    p.add_argument("--handlers", default="runc,husk", help="the first is the reference")
    p.add_argument("--json", help="write every observation here")
    a = p.parse_args()

    ch = grpc.insecure_channel(f"unix://{a.socket}")
    cri = (rpc.RuntimeServiceStub(ch), rpc.ImageServiceStub(ch))
    npass = nfail = 0

    def verdict(ok, name, detail=""):
        nonlocal npass, nfail
        if ok:
            npass += 1
            print(f"PASS: {name}")
        else:
            nfail += 1
            print(f"FAIL: {name}")
            if detail:
                print("      " + detail.replace("\n", "\n      "))

    try:
        v = cri[0].Version(pb.VersionRequest(version="v1"), timeout=CALL_TIMEOUT)
        verdict(v.runtime_name == "containerd" and v.runtime_api_version == "v1",
                "Version", f"{v.runtime_name} {v.runtime_version} api {v.runtime_api_version}")
        print(f"      containerd {v.runtime_version}, CRI {v.runtime_api_version}")
    except grpc.RpcError as e:
        verdict(False, "Version", err_text(e))
    try:
        ref = cri[1].PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=a.image)), timeout=CALL_TIMEOUT).image_ref
        st = cri[1].ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=a.image)), timeout=CALL_TIMEOUT)
        verdict(ref.startswith("sha256:") and st.image.id == ref, f"PullImage {a.image} (local registry)",
                f"image_ref {ref!r}, ImageStatus id {st.image.id!r}")
    except grpc.RpcError as e:
        verdict(False, f"PullImage {a.image} (local registry)", err_text(e))

    handlers = a.handlers.split(",")
    runs = []
    for h in handlers:
        r = Run(cri, h, a)
        t0 = time.time()
        scenario(r)
        print(f"      handler {h}: {len(r.order)} steps in {time.time() - t0:.1f} s")
        runs.append(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({r.h: r.obs for r in runs}, f, indent=1, default=str)

    ref = runs[0]
    for step in ref.order:
        want = EXPECT.get(step)
        vals = {r.h: r.obs.get(step, "error: step not reached") for r in runs}
        shown = "\n".join(f"{h}: {vals[h]!r}" for h in handlers)
        if want is not None:
            ok = all(norm(vals[h]) == norm(want) for h in handlers)
            verdict(ok, step, "" if ok else f"want {want!r}\n{shown}")
        else:
            ok = not is_err(vals[ref.h]) and all(norm(vals[h]) == norm(vals[ref.h]) for h in handlers)
            verdict(ok, step, "" if ok else shown)
    print(f"{npass} passed, {nfail} failed")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
