#!/usr/bin/env bash
# husk pull vs podman pull, and husk run --rm IMAGE true vs podman run --rm with the image present,
# from the same local registry (Debian's docker-registry) inside a network namespace this script
# makes (`unshare -n`, lo up; nothing touches the host's network), interleaved run by run.
#
#   bench/pull.sh            # as root; REPS=5 pulls each, RUNS=20 runs each; prints a markdown table
#
# The pulled image: the busybox layer + BIG_LAYERS layers of BIG_LAYER_MB MiB of random files
# (incompressible) + a copy of /usr/include (many small text files), gzip-compressed by skopeo.
# Both tools pull into stores under $W (same filesystem); podman runs with its own --root and
# runc, ulimits pinned as shared/tools/registry-fixture.sh does. Each pull starts from an empty
# store (husk: the store removed; podman: rmi -a). Then the peak RSS (wait4's maxrss, GNU
# time's %M) of one pull of an image whose one layer is HUGE_MB MiB of random bytes: a pull
# streams a layer, the bound is 64 MiB for husk. Env: HUSK (default the release build), REPS,
# RUNS, BIG_LAYERS (4), BIG_LAYER_MB (48), HUGE_MB (1024; 0 skips the RSS row), W (work dir,
# default /var/tmp/husk-pull-bench), PARTS (default "pull run cold huge": which tables; cold is
# `run --rm IMAGE true` with the image absent, the pull included, REPS times each).
set -euo pipefail
cd "$(dirname "$0")/.."
HUSK=${HUSK:-$PWD/target/x86_64-unknown-linux-musl/release/husk}
REPS=${REPS:-5}
RUNS=${RUNS:-20}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_LAYER_MB=${BIG_LAYER_MB:-48}
HUGE_MB=${HUGE_MB:-1024}
PARTS=${PARTS:-pull run cold huge}
W=${W:-/var/tmp/husk-pull-bench}
if [[ -z ${IN_NETNS:-} ]]; then
  [[ -x $HUSK ]] || cargo build --release -p husk
  exec unshare -n env IN_NETNS=1 HUSK="$HUSK" W="$W" HUGE_MB="$HUGE_MB" PARTS="$PARTS" bash "$0" "$@"
fi
ip link set lo up
REG=127.0.0.1:5000
mkdir -p "$W/reg"
export CONTAINERS_CONF=$W/containers.conf
NOFILE=$(ulimit -Hn); NPROC=$(cat /proc/sys/kernel/pid_max)
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
  "$NOFILE" "$NOFILE" "$NPROC" "$NPROC" > "$CONTAINERS_CONF"
PODMAN=(podman --root "$W/podman/root" --runroot "$W/podman/run" --tmpdir "$W/podman/tmp" --storage-driver overlay)
cat > "$W/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/reg}}
http: {addr: $REG}
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REGPID=$!
trap 'kill $REGPID 2>/dev/null || true; "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true; rm -rf "$W/store" "$W/podman"' EXIT
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

if [[ ! -f $W/oci/index.json ]]; then
  rm -rf "$W/oci" "$W/work"; mkdir -p "$W/work/bb/bin"
  cp /bin/busybox "$W/work/bb/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/work/bb/bin/$a"; done
  tar --numeric-owner --owner=0 --group=0 -C "$W/work/bb" -cf "$W/work/bb.tar" .
  umoci init --layout "$W/oci"
  umoci new --image "$W/oci:big"
  umoci raw add-layer --image "$W/oci:big" "$W/work/bb.tar"
  for i in $(seq 1 "$BIG_LAYERS"); do
    d=$W/work/rand$i; mkdir -p "$d/data/l$i"
    for j in $(seq 1 $((BIG_LAYER_MB / 4))); do head -c 4M /dev/urandom > "$d/data/l$i/f$j.bin"; done
    tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$W/work/rand$i.tar" .
    umoci raw add-layer --image "$W/oci:big" "$W/work/rand$i.tar"
    rm -rf "$d" "$W/work/rand$i.tar"
  done
  tar --numeric-owner --owner=0 --group=0 -C / -cf "$W/work/inc.tar" usr/include
  umoci raw add-layer --image "$W/oci:big" "$W/work/inc.tar"
  umoci config --image "$W/oci:big" --config.cmd sh --config.env PATH=/bin --architecture amd64 --os linux
  umoci gc --layout "$W/oci"
  rm -rf "$W/work"
fi
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:big" "docker://$REG/big:latest"
MIB=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/big/manifests/latest" \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"])/1048576)')
LAYERS=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/big/manifests/latest" \
  | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
: > "$W/samples"
"${PODMAN[@]}" info >/dev/null 2>&1 || true
has() { [[ " $PARTS " == *" $1 "* ]]; }
if has pull; then
  for r in $(seq 1 "$REPS"); do
    rm -rf "$W/store"; sync
    echo "husk-pull $(HUSK_STORE=$W/store t "$HUSK" pull -q "$REG/big")" >> "$W/samples"
    "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true; sync
    echo "podman-pull $(t "${PODMAN[@]}" pull -q --tls-verify=false "$REG/big")" >> "$W/samples"
  done
fi
if has run; then
  [[ -f $W/store/images.json ]] || HUSK_STORE=$W/store "$HUSK" pull -q "$REG/big" >/dev/null
  "${PODMAN[@]}" image exists "$REG/big" || "${PODMAN[@]}" pull -q --tls-verify=false "$REG/big" >/dev/null
  for r in $(seq 1 "$RUNS"); do
    echo "husk-run $(HUSK_STORE=$W/store t "$HUSK" --root "$W/husk-run" run --rm --network none "$REG/big" true)" >> "$W/samples"
    echo "podman-run $(t "${PODMAN[@]}" run --rm --network none "$REG/big" true)" >> "$W/samples"
  done
fi
# Cold: the image absent, `run` pulls it (--pull missing, both tools' default), then runs true.
if has cold; then
  for r in $(seq 1 "$REPS"); do
    rm -rf "$W/store"; sync
    echo "husk-cold $(HUSK_STORE=$W/store t "$HUSK" --root "$W/husk-run" run --rm -q --network none "$REG/big" true)" >> "$W/samples"
    "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true; sync
    echo "podman-cold $(t "${PODMAN[@]}" run --rm -q --network none --tls-verify=false "$REG/big" true)" >> "$W/samples"
  done
fi
if ((HUGE_MB > 0)) && has huge; then
  if [[ ! -f $W/oci-huge/index.json ]]; then
    rm -rf "$W/oci-huge" "$W/work"; mkdir -p "$W/work/h"
    head -c "$((HUGE_MB << 20))" /dev/urandom > "$W/work/h/huge.bin"
    tar --numeric-owner --owner=0 --group=0 -C "$W/work/h" -cf "$W/work/huge.tar" .
    umoci init --layout "$W/oci-huge"
    umoci new --image "$W/oci-huge:huge"
    umoci raw add-layer --image "$W/oci-huge:huge" "$W/work/huge.tar"
    umoci config --image "$W/oci-huge:huge" --config.cmd sh --architecture amd64 --os linux
    umoci gc --layout "$W/oci-huge"
    rm -rf "$W/work"
  fi
  skopeo copy -q --dest-tls-verify=false "oci:$W/oci-huge:huge" "docker://$REG/huge:latest"
  rss() { /usr/bin/time -o "$W/rss" -f '%M %e' "$@" >/dev/null 2>&1; cat "$W/rss"; }
  rm -rf "$W/store-huge"
  echo "husk-huge $(HUSK_STORE=$W/store-huge rss "$HUSK" pull -q "$REG/huge")" >> "$W/samples"
  rm -rf "$W/store-huge"
  "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true
  echo "podman-huge $(rss "${PODMAN[@]}" pull -q --tls-verify=false "$REG/huge")" >> "$W/samples"
  "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true
fi
python3 - "$W/samples" "$MIB" "$LAYERS" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import os, statistics as st, sys
d, huge = {}, {}
for l in open(sys.argv[1]):
    k, *v = l.split()
    if k.endswith("-huge"):
        huge[k] = v
    else:
        d.setdefault(k, []).append(float(v[0]))
mib = float(sys.argv[2])
print(f"image: {sys.argv[3]} layers, {mib:.1f} MiB compressed; load average at the end: {sys.argv[4]}\n")
print("| what | runs | median s | min s | max s | MiB/s (median) |\n|---|---|---|---|---|---|")
for k in ["husk-pull", "podman-pull", "husk-run", "podman-run", "husk-cold", "podman-cold"]:
    v = d.get(k, [])
    if not v:
        continue
    rate = f"{mib / st.median(v):.0f}" if k.endswith("pull") else ""
    print(f"| {k} | {len(v)} | {st.median(v):.3f} | {min(v):.3f} | {max(v):.3f} | {rate} |")
hp, pp = d.get("husk-pull"), d.get("podman-pull")
hr, pr = d.get("husk-run"), d.get("podman-run")
if hp and pp:
    print(f"\npull: husk/podman median ratio {st.median(hp) / st.median(pp):.2f}")
if hr and pr:
    print(f"run --rm IMAGE true: husk/podman median ratio {st.median(hr) / st.median(pr):.2f}")
hc, pc = d.get("husk-cold"), d.get("podman-cold")
if hc and pc:
    print(f"cold run (pull included): husk/podman median ratio {st.median(hc) / st.median(pc):.2f}")
if huge:
    print(f"\n| pull of one {os.environ['HUGE_MB']} MiB random layer | peak RSS MiB | s |\n|---|---|---|")
    for k, (kib, secs) in huge.items():
        print(f"| {k.split('-')[0]} | {int(kib) / 1024:.1f} | {float(secs):.1f} |")
PY
