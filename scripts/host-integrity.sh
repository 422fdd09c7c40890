#!/usr/bin/env bash
# The host must end the test suite as it began (issue 19): its /dev nodes (type, mode, owner,
# major:minor, inode and ctime: something on a dev machine once re-created /dev/null as a 0644
# file), /etc, the husk binaries and the cgroup roots (each root's settings and owner).
#   scripts/host-integrity.sh snapshot FILE           records the host in FILE
#   scripts/host-integrity.sh compare FILE [--clients] fails, listing each difference
# --clients: after podman, containerd and docker ran, whose first start writes their own
# configuration under /etc (the dirs named in CLIENT_ETC), and after later steps rebuilt husk.
set -euo pipefail
cd "$(dirname "$0")/.."

# What podman, containerd and docker write under /etc on their first start, and the account
# files test-clients.sh's useradd/userdel rewrite (same content, new mtimes and backups).
CLIENT_ETC='/etc(/(cni|containers|docker|containerd|crictl\.yaml|buildkit)(/| )| |/(passwd|group|shadow|gshadow|subuid|subgid)-? )'

snapshot() {
  # /dev: every node and link but the per-session ones (pts, shm, mqueue). The inode number and
  # ctime, not the mtime: a tty's mtime moves whenever it is used (script(1) in the tests), while
  # a re-created node gets a new inode and a chmod/chown a new ctime.
  find /dev -xdev \( -path /dev/pts -o -path /dev/shm -o -path /dev/mqueue \) -prune -o \
    -print0 | sort -z | xargs -0 -r stat -c 'dev %n %F %a %u:%g %t:%T inode %i ctime %Z' --
  # /etc: type, mode, owner, size, mtime and content of regular files.
  find /etc -xdev -print0 | sort -z | xargs -0 -r stat -c 'etc %n %F %a %u:%g %s %Y' --
  find /etc -xdev -type f -readable -print0 | sort -z | xargs -0 -r sha256sum -- |
    sed 's/^/etc-sum /'
  # The husk binaries the suite runs (never written by a container: CVE-2019-5736).
  for b in target/*/debug/husk target/*/release/husk target/debug/husk target/release/husk; do
    [[ -f $b ]] && echo "bin $(sha256sum "$b")"
  done
  # Each hierarchy's root: its mode and owner, and the root's own settings husk could touch.
  for h in /sys/fs/cgroup /sys/fs/cgroup/*/; do
    h=${h%/}
    [[ -d $h ]] || continue
    echo "cgroup $(stat -c '%n %a %u:%g' "$h")"
    for f in cgroup.subtree_control release_agent notify_on_release cgroup.clone_children \
      cpuset.cpus cpuset.mems cpuset.cpu_exclusive memory.use_hierarchy devices.list; do
      [[ -r $h/$f ]] && echo "cgroup $h/$f $(tr '\n' ' ' <"$h/$f")"
    done
  done
  return 0
}

case ${1:-} in
snapshot)
  snapshot >"$2"
  ;;
compare)
  now=$(mktemp)
  trap 'rm -f "$now"' EXIT
  snapshot >"$now"
  filter=cat
  if [[ ${3:-} == --clients ]]; then
    # The clients' own /etc files, and the binaries: the client and guest steps rebuild husk
    # (release, and without the test features), so only the host-test stage compares them.
    filter() { grep -Ev "^etc(-sum)? ${CLIENT_ETC}|^bin " || true; }
    filter=filter
  fi
  # etc-sum lines are "etc-sum HASH  PATH": put the path first so the filter sees it.
  norm() { sed -E 's/^etc-sum ([0-9a-f]+) +(.*)$/etc-sum \2 \1/' "$1" | $filter; }
  if ! diff <(norm "$2") <(norm "$now") >"$now.diff"; then
    echo "the host changed during the tests (< before, > after):"
    cat "$now.diff"
    rm -f "$now.diff"
    exit 1
  fi
  rm -f "$now.diff"
  echo "host unchanged: /dev nodes, /etc, the husk binaries, the cgroup roots"
  ;;
*)
  echo "usage: $0 snapshot FILE | compare FILE [--clients]" >&2
  exit 2
  ;;
esac
