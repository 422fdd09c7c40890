# Shared by the bench scripts (sourced).

# podman_conf FILE: a containers.conf podman can run with on this host, which cannot raise
# RLIMIT_NOFILE/NPROC past its own hard limits (as scripts/test-clients.sh), with cgroupfs and
# file events so podman needs no systemd.
podman_conf() {
  cat >"$1" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}
