//! `husk run --network bridge`. NETWORK RULE: every test runs its whole body in a network
//! namespace of its own (`unshare -n`), with husk's bridge, NAT and any "remote" namespace inside
//! it; the host's interfaces, routes, sysctls and firewall are never touched, and every wait is
//! bounded (`timeout`, counted loops).

mod common;
use common::*;
use std::process::{Command, Output, Stdio};

/// Runs `script` under sh in a fresh network namespace, with $HUSK, $ROOT (a state root of its
/// own), $RF (the busybox rootfs) and $BB (busybox) set.
fn in_netns(name: &str, script: &str) -> Output {
    let root = std::env::temp_dir().join(format!("husk-net-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let o = Command::new("timeout")
        .args(["120", "unshare", "-n", "sh", "-euc", script])
        .env("HUSK", HUSK)
        .env("ROOT", &root)
        .env("RF", rootfs())
        .env("BB", rootfs().join("bin/busybox"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
    o
}

fn tools_missing() -> Option<&'static str> {
    ["ip", "nft", "nsenter", "unshare", "timeout"]
        .into_iter()
        .find(|t| {
            Command::new(t)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
}

macro_rules! require_net {
    () => {
        require_root!();
        if let Some(t) = tools_missing() {
            common::skip(common::Skip::Prerequisite, &format!("no {t} binary"));
            return;
        }
    };
}

/// What every test checks at its end, inside its namespace: no veth and no lease left. A pair
/// goes with its container's network namespace, which the kernel tears down on a worker of its
/// own after the container's exit: waited for, within 2 minutes (a loaded CI machine's kernel
/// took longer than 10 s to tear down 50 namespaces).
const LEFTOVERS: &str = r#"
i=0; while ip -o link show | grep -q ' hk' && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
echo "links: $(ip -o link show | grep -c ' hk' || true)"
echo "leases: $(ls "$ROOT/.net/leases" | wc -l)"
echo "hosts-files: $(ls "$ROOT/.net/endpoints" 2>/dev/null | wc -l)"
"#;

/// Starts a "remote" namespace joined to the test's by a veth (192.0.2.1 here, 192.0.2.2 there)
/// serving `remote-page` over HTTP on 8080; $REMOTE is its holder process, killed at exit.
const REMOTE: &str = r#"
unshare -n "$BB" sleep 100 & REMOTE=$!
HTTPD=
trap 'kill $REMOTE $HTTPD' EXIT
i=0; while [ "$(readlink /proc/$REMOTE/ns/net)" = "$(readlink /proc/self/ns/net)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link add up0 type veth peer name up1 netns $REMOTE
ip addr add 192.0.2.1/24 dev up0; ip link set up0 up
mkdir -p "$ROOT/www"; echo remote-page > "$ROOT/www/index.html"
nsenter --net=/proc/$REMOTE/ns/net sh -c "ip addr add 192.0.2.2/24 dev up1; ip link set up1 up; ip link set lo up"
nsenter --net=/proc/$REMOTE/ns/net "$BB" httpd -f -p 8080 -h "$ROOT/www" & HTTPD=$!
i=0; until nsenter --net=/proc/$REMOTE/ns/net ss -Hltn | grep -q :8080 || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
"#;

fn check(o: &Output) -> String {
    let out = stdout(o);
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        stderr(o)
    );
    assert!(
        out.contains("links: 0\n")
            && out.contains("leases: 0\n")
            && out.contains("hosts-files: 0\n"),
        "left behind:\n{out}"
    );
    out
}

/// `check`, then every line of `wants` in the output.
fn check_has(o: &Output, wants: &[&str]) -> String {
    let out = check(o);
    for want in wants {
        assert!(out.contains(want), "want {want:?} in:\n{out}");
    }
    out
}

#[test]
fn bridge_gives_an_address_a_route_and_hosts_and_leaves_nothing() {
    require_net!();
    let o = in_netns(
        "basic",
        &format!(
            r#"
$HUSK --root "$ROOT" run --network bridge --name web --hostname web --rootfs "$RF" -- sh -c '
  ip -4 -o addr show eth0; ip route; cat /etc/hosts; cat /sys/class/net/eth0/mtu
  ping -c 1 -W 5 10.89.0.1 >/dev/null && echo gateway-answers'
nft list table inet husk | grep -q masquerade && echo nat-installed
# A pair left under the address's name (its namespace not yet torn down) is replaced. The first
# run's own pair may still be there (the kernel tears it down later): either is such a pair.
ip link show hk0a590002 >/dev/null 2>&1 || ip link add hk0a590002 type veth peer name stale0
# Each network step is narrated with its own cost.
$HUSK --root "$ROOT" --explain run --network bridge -p 8080:80 --rootfs "$RF" -- true 2>&1 | grep 'network: .* µs)$' | sed 's/.*network: /explain: /; s/ ([0-9]* µs)$//'
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("inet 10.89.0.2/16"), "{out}");
    assert!(out.contains("default via 10.89.0.1 dev eth0"), "{out}");
    assert!(
        out.contains("10.89.0.2\tweb\n") && out.contains("127.0.0.1\tlocalhost"),
        "{out}"
    );
    // The test's namespace has no default route: the MTU falls back to 1500.
    assert!(out.contains("\n1500\n"), "{out}");
    assert!(
        out.contains("gateway-answers") && out.contains("nat-installed"),
        "{out}"
    );
    for step in [
        "explain: nf_tables batch: 1 DNAT rule(s)\n",
        "explain: look up bridge husk0\n",
        "explain: RTM_NEWLINK veth hk0a590002 ↔ eth0\n",
        "explain: rtnetlink socket in the container's netns\n",
        "explain: eth0 up, RTM_NEWADDR 10.89.0.2/16, RTM_NEWROUTE default via 10.89.0.1\n",
        "explain: nf_tables: delete the rules commented",
        "explain: leased 10.89.0.2 on bridge (husk0): lock, stale leases, address, hosts files\n",
        "explain: released the lease and hosts file, port rules gone\n",
    ] {
        assert!(out.contains(step), "{step}: {out}");
    }
}

#[test]
fn outbound_traffic_is_masqueraded_to_a_remote_namespace() {
    require_net!();
    // The "remote" namespace has no route back to husk's subnet: a reply arrives only if the
    // request left with the uplink's address (masquerade).
    let o = in_netns(
        "nat",
        &format!(
            r#"{REMOTE}
# busybox's wget crashes in its static resolver; nc speaks HTTP just as well.
$HUSK --root "$ROOT" run --network bridge --rootfs "$RF" -- sh -c 'printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 10 nc 192.0.2.2 8080'
nsenter --net=/proc/$REMOTE/ns/net ip route | grep -c 10.89 || true
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("remote-page"), "{out}");
    assert!(
        out.contains("\n0\n"),
        "the remote must not have a route to the subnet: {out}"
    );
}

#[test]
fn parallel_starts_get_distinct_addresses() {
    require_net!();
    let o = in_netns(
        "parallel",
        &format!(
            r#"
mkdir -p "$ROOT/outs" "$ROOT/gate"
# Each container holds its address until all hundred have printed theirs (a released address is
# free for the next run, so only containers alive at once must differ).
for i in $(seq 1 100); do
  {{ $HUSK --root "$ROOT" run --network bridge -v "$ROOT/gate:/gate" --rootfs "$RF" -- sh -c '
      ip -4 -o addr show eth0; n=0; until [ -e /gate/open ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done' \
    || echo "run $i: status $?"; }} > "$ROOT/outs/$i" 2>&1 &
done
n=0; until [ "$(cat "$ROOT"/outs/* | grep -c 10.89)" -ge 100 ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done
touch "$ROOT/gate/open"
wait
cat "$ROOT"/outs/*
echo "distinct: $(cat "$ROOT"/outs/* | awk '{{print $4}}' | sort -u | grep -c 10.89)"
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("distinct: 100\n"), "{out}");
}

#[test]
fn a_sigkilled_husks_container_lease_veth_and_rules_are_reclaimed() {
    require_net!();
    // Killed twice: as soon as its veth exists (during setup, before the command runs) and
    // once the command runs. Each time the container dies with its husk, and the next command
    // reclaims the lease, the veth and the port rule without any `delete`.
    let o = in_netns(
        "sigkill",
        &format!(
            r#"
for when in setup running; do
  $HUSK --root "$ROOT" run --name k --network bridge -p 8080:80 --rootfs "$RF" -- sleep 61 & H=$!
  i=0
  if [ $when = setup ]; then
    until ip -o link show | grep -q ' hk' || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done
  else
    until pgrep -f '^sleep 61' >/dev/null || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done
  fi
  kill -9 $H; wait $H || true
  i=0; while pgrep -f '^sleep 61' >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  echo "$when: container processes left: $(pgrep -f '^sleep 61' | wc -l)"
  echo "$when: leases after the kill: $(ls "$ROOT/.net/leases" | wc -l)"
  $HUSK --root "$ROOT" run --name k --network bridge -p 8080:80 --rootfs "$RF" -- ip -4 -o addr show eth0 | sed "s/^/$when: /"
  echo "$when: rules: $(nft list chain inet husk ports | grep -c dnat || true)"
done
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    for when in ["setup", "running"] {
        assert!(
            out.contains(&format!("{when}: container processes left: 0\n")),
            "{out}"
        );
        // The dead husk's address and host port were free again, its rule gone.
        assert!(
            out.contains(&format!("{when}: leases after the kill: 1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{when}: 2: eth0    inet 10.89.0.2/16")),
            "{out}"
        );
        assert!(out.contains(&format!("{when}: rules: 0\n")), "{out}");
    }
}

#[test]
fn published_ports_from_another_namespace_from_the_host_and_busy_ports() {
    require_net!();
    let o = in_netns(
        "publish",
        &format!(
            r#"
unshare -n "$BB" sleep 100 & CLIENT=$!
trap 'kill $CLIENT' EXIT
i=0; while [ "$(readlink /proc/$CLIENT/ns/net)" = "$(readlink /proc/self/ns/net)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link add up0 type veth peer name up1 netns $CLIENT
ip addr add 192.0.2.1/24 dev up0; ip link set up0 up; ip link set lo up
nsenter --net=/proc/$CLIENT/ns/net sh -c "ip addr add 192.0.2.2/24 dev up1; ip link set up1 up"
mkdir -p "$ROOT/www"; echo published-page > "$ROOT/www/index.html"
# Another engine's table (docker's, podman's): husk's rules never touch it.
nft add table ip other; nft add chain ip other c; nft add rule ip other c tcp dport 8080 counter comment web
$HUSK --root "$ROOT" run --name web --network bridge -p 8080:80 -p 127.0.0.1:8081:80 -v "$ROOT/www:/www" --rootfs "$RF" -- sh -c '
  httpd -f -vv -p 80 -h /www 2>/www/log & n=0; until [ -e /www/stop ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done' & WEB=$!
get() {{ printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 10 "$BB" nc "$@" | tail -1; }}
i=0; until nft list chain inet husk ports 2>/dev/null | grep -q 8081 || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
i=0; until [ "$(get 127.0.0.1 8081)" = published-page ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
echo "from-remote: $(nsenter --net=/proc/$CLIENT/ns/net sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 10 '$BB' nc 192.0.2.1 8080 | tail -1")"
echo "from-host-loopback: $(get 127.0.0.1 8081)"
echo "from-host-address: $(get 192.0.2.1 8080)"
echo "hairpin: $($HUSK --root "$ROOT" run --network bridge --rootfs "$RF" -- sh -c 'printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 10 nc 192.0.2.1 8080 | tail -1')"
grep -q 192.0.2.2 "$ROOT/www/log" && echo "client-address-preserved"
$HUSK --root "$ROOT" run --network bridge -p 8080:81 --rootfs "$RF" -- true 2>&1 | sed 's/^/busy: /' || true
touch "$ROOT/www/stop"; wait $WEB
echo "rules-left: $(nft list chain inet husk ports | grep -c dnat || true)"
echo "other-table: $(nft list table ip other | grep -c 'tcp dport 8080 counter packets 0 bytes 0 comment \"web\"')"
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("other-table: 1\n"), "{out}");
    assert!(out.contains("from-remote: published-page\n"), "{out}");
    assert!(
        out.contains("from-host-loopback: published-page\n"),
        "{out}"
    );
    assert!(out.contains("from-host-address: published-page\n"), "{out}");
    assert!(
        out.contains(
            "busy: husk: -p 8080:81/tcp: host port 8080 is already published by container web"
        ),
        "{out}"
    );
    assert!(out.contains("rules-left: 0\n"), "{out}");
    assert!(out.contains("hairpin: published-page\n"), "{out}");
    assert!(out.contains("client-address-preserved"), "{out}");
}

/// A published UDP port: a datagram from the remote namespace and one to the host's own
/// address reach the container, whose answer names the client's address as it saw it. The
/// client opens a new socket (a new source port) per try: a datagram sent before the rule
/// existed leaves a conntrack entry without NAT that later ones of that port would follow.
#[test]
fn a_published_udp_port_answers_from_remote_and_host() {
    require_net!();
    if !have("python3") {
        common::skip(common::Skip::Prerequisite, "python3 not installed");
        return;
    }
    let o = in_netns(
        "udp",
        &format!(
            r#"{REMOTE}
ip link set lo up
$HUSK --root "$ROOT" run --name echo --network bridge -p 5353:53/udp -- python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53)); s.settimeout(60)
while True:
    d, a = s.recvfrom(100)
    if d == b"stop": break
    s.sendto(b"pong " + a[0].encode(), a)
' & SRV=$!
mkdir -p "$ROOT"; cat > "$ROOT/ask.py" <<'PY'
import socket, sys
for i in range(300):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(0.2)
    c.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    try:
        print(c.recvfrom(100)[0].decode()); break
    except socket.timeout:
        pass
PY
i=0; until nft list chain inet husk ports 2>/dev/null | grep -q 5353 || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
echo "from-remote: $(nsenter --net=/proc/$REMOTE/ns/net python3 "$ROOT/ask.py" 192.0.2.1 5353 ping)"
echo "from-host-address: $(python3 "$ROOT/ask.py" 192.0.2.1 5353 ping)"
for i in 1 2 3 4 5; do python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"stop", ("192.0.2.1", 5353))'; done
wait $SRV
echo "rules-left: $(nft list chain inet husk ports | grep -c dnat || true)"
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("from-remote: pong 192.0.2.2\n"), "{out}");
    assert!(out.contains("from-host-address: pong 192.0.2.1\n"), "{out}");
    assert!(out.contains("rules-left: 0\n"), "{out}");
}

#[test]
fn failures_leave_no_lease_veth_or_rule() {
    require_net!();
    let o = in_netns(
        "failures",
        &format!(
            r#"
$HUSK --root "$ROOT" run --network bridge -p 8080:80 --rootfs "$RF" -- /no/such/command 2>/dev/null || echo "missing-command: $?"
ip link set lo up
"$BB" nc -l -p 9090 & LISTENER=$!
trap 'kill $LISTENER' EXIT
i=0; until ss -Hltn | grep -q :9090 || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
$HUSK --root "$ROOT" run --network bridge -p 9090:80 --rootfs "$RF" -- true 2>&1 | sed 's/^/busy: /' || true
$HUSK --root "$ROOT" run --network bridge -p 8000-8001:80-82 --rootfs "$RF" -- true 2>&1 | sed 's/^/ranges: /' || true
$HUSK --root "$ROOT" run --network nosuch --rootfs "$RF" -- true 2>&1 | sed 's/^/no-network: /' || true
echo "rules-left: $(nft list chain inet husk ports | grep -c dnat || true)"
# A "husk0" that is no bridge: the kernel's refusal comes back naming the step and the link.
ip link del husk0; ip link add husk0 type veth peer name husk0p; ip link set husk0 up
$HUSK --root "$ROOT" run --network bridge -p 8080:80 --rootfs "$RF" -- true 2>&1 | sed 's/^/not-a-bridge: /' || true
ip link del husk0
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("missing-command: 127\n"), "{out}");
    assert!(
        out.contains("busy: husk: -p 9090:80/tcp: host port 0.0.0.0:9090 is busy: EADDRINUSE"),
        "{out}"
    );
    assert!(
        out.contains(
            "ranges: husk: -p 8000-8001:80-82: the host range and the container range differ in length"
        ),
        "{out}"
    );
    assert!(
        out.contains("no-network: husk: network nosuch: no such network"),
        "{out}"
    );
    assert!(out.contains("rules-left: 0\n"), "{out}");
    assert!(
        out.contains("not-a-bridge: husk: network: create veth hk0a590002 on husk0 (peer eth0 in the container): E"),
        "{out}"
    );
}

#[test]
fn detached_bridge_containers_lease_per_run_and_leave_nothing_after_rm() {
    require_net!();
    let o = in_netns(
        "detached",
        &format!(
            r#"
H() {{ $HUSK --root "$ROOT" "$@"; }}
rules() {{ nft list table inet husk 2>/dev/null | grep -c 'dport 18080' || true; }}
H run -d --name dnet --network bridge -p 18080:80 --rootfs "$RF" sleep 600 >/dev/null
ip=$(H exec dnet ip -4 -o addr show eth0 | awk '{{print $4}}' | cut -d/ -f1)
echo "ip=$ip"
"$BB" ping -c 1 -W 5 "$ip" >/dev/null && echo container-answers
H exec dnet cat /etc/hosts | grep -q "^$ip	" && echo hosts-names-it
echo "running: leases $(ls "$ROOT/.net/leases" | wc -l) rules $(rules)"
H stop -t 0 dnet >/dev/null
echo "stopped: leases $(ls "$ROOT/.net/leases" | wc -l) rules $(rules)"
H start dnet >/dev/null
H exec dnet ip -4 -o addr show eth0 | grep -q "inet $ip/" && echo same-address-again
echo "started: leases $(ls "$ROOT/.net/leases" | wc -l) rules $(rules)"
H rm -f dnet >/dev/null
echo "removed: rules $(rules)"
rm -rf "$ROOT-fe"
{LEFTOVERS}"#
        ),
    );
    let out = check(&o);
    assert!(out.contains("ip=10.89.0.2\n"), "{out}");
    for want in [
        "container-answers",
        "hosts-names-it",
        "running: leases 1 rules 1",
        "stopped: leases 0 rules 0",
        "same-address-again",
        "started: leases 1 rules 1",
        "removed: rules 0",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
}

#[test]
fn named_networks_resolve_names_isolate_and_are_removed_only_when_unused() {
    require_net!();
    let o = in_netns(
        "named",
        &format!(
            r#"{REMOTE}
H="$HUSK --root $ROOT"
$H network create --subnet 10.77.0.0/24 front >/dev/null
$H network create back >/dev/null
$H network create --internal sealed >/dev/null
$H network create spare >/dev/null
$H network ls | awk 'NR>1 {{print "ls:", $2, $4, $5}}'
mkdir -p "$ROOT/gate"
# db waits until its /etc/hosts names web (rewritten in place when web joins), then for the gate.
$H run --network front --name ndb --network-alias database -v "$ROOT/gate:/gate" --rootfs "$RF" -- sh -c '
  ip -4 -o addr show eth0 | awk "{{print \"db-ip:\", \$4}}" > /gate/db-ip
  n=0; until grep -q "	nweb" /etc/hosts || [ $n -ge 300 ]; do sleep 0.1; n=$((n+1)); done
  grep "	nweb" /etc/hosts | sed "s/^/db-sees: /" && touch /gate/db-saw
  n=0; until [ -e /gate/open ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done' & DB=$!
i=0; until [ -s "$ROOT/gate/db-ip" ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
cat "$ROOT/gate/db-ip"
$H network inspect front | grep -E '"(Subnet|Gateway|IPv4Address)"' | tr -d ' ,' | sed 's/^/inspect: /'
$H network rm front 2>&1 | sed 's/^/rm-in-use: /' || true
# nweb stays until ndb has seen it (or 30 s): ndb polls, nweb alone may be quicker.
$H run --network front --name nweb -v "$ROOT/gate:/gate" --rootfs "$RF" -- sh -c '
  grep -wE "ndb|database" /etc/hosts | sed "s/^/web-sees: /"
  ping -c 1 -W 5 ndb >/dev/null && echo web-reaches-db
  ping -c 1 -W 5 database >/dev/null && echo web-reaches-database
  printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 10 nc 192.0.2.2 8080 | tail -1 | sed "s/^/front-outbound: /"
  n=0; until [ -e /gate/db-saw ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n+1)); done'
$H run --network back --rootfs "$RF" -- sh -c '
  grep -cw "ndb" /etc/hosts | sed "s/^/back-names-db: /"
  ping -c 1 -W 2 10.77.0.2 >/dev/null && echo back-crossed || echo back-isolated'
$H run --network sealed --rootfs "$RF" -- sh -c '
  printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 3 nc 192.0.2.2 8080 | tail -1 | sed "s/^/sealed-outbound: /"; echo sealed-done'
# front is still in use (db): prune keeps it.
$H network prune | tr '\n' ' ' | sed 's/^/prune: /'; echo
touch "$ROOT/gate/open"; wait $DB
$H network rm front
$H network ls -q | tr '\n' ' ' | sed 's/^/after: /'; echo
echo "network-rules-left: $(nft list table inet husk | grep -c 'comment "network' || true)"
echo "bridges-left: $(ip -o link show | grep -c ' hk-' || true)"
{LEFTOVERS}"#
        ),
    );
    let out = check_has(
        &o,
        &[
            "ls: front 10.77.0.0/24 false\n",
            "ls: back 10.91.0.0/24 false\n",
            "ls: sealed 10.91.1.0/24 true\n",
            "db-ip: 10.77.0.2/24\n",
            "inspect: \"Subnet\":\"10.77.0.0/24\"\n",
            "inspect: \"Gateway\":\"10.77.0.1\"\n",
            "inspect: \"IPv4Address\":\"10.77.0.2/24\"\n",
            "rm-in-use: husk: network front is in use by container ndb: stop it first\n",
            "web-sees: 10.77.0.2\tndb database\n",
            "db-sees: 10.77.0.3\tnweb\n",
            "web-reaches-db\n",
            "web-reaches-database\n",
            "front-outbound: remote-page\n",
            "back-names-db: 0\n",
            "back-isolated\n",
            "sealed-done\n",
            "prune: Deleted Networks: back sealed spare \n",
            "after: bridge host none \n",
            "network-rules-left: 0\n",
            "bridges-left: 0\n",
        ],
    );
    assert!(!out.contains("sealed-outbound: remote-page"), "{out}");
}

#[test]
fn chosen_host_ports_ranges_port_ip_mac_and_another_containers_namespace() {
    require_net!();
    let o = in_netns(
        "ports",
        &format!(
            r#"
ip link set lo up
H="$HUSK --root $ROOT"
mkdir -p "$ROOT/www"; echo page > "$ROOT/www/index.html"
$H run --name p --network bridge --ip 10.89.0.40 --mac-address 02:42:0a:59:00:28 -p 80 -p 127.0.0.1:9000-9001:81-82 -p 9500-9510:53/udp -v "$ROOT/www:/www" --rootfs "$RF" -- sh -c '
  httpd -p 80 -h /www; httpd -p 82 -h /www
  cat /sys/class/net/eth0/address > /www/mac
  n=0; until [ -e /www/stop ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done' & P=$!
get() {{ printf "GET /index.html HTTP/1.0\r\n\r\n" | timeout 10 "$BB" nc "$@" | tail -1; }}
i=0; until [ -s "$ROOT/www/mac" ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
$H port p | sed 's/^/port: /'
HP=$($H port p 80 | cut -d: -f2)
echo "chosen-in-range: $([ "$HP" -ge 1024 ] && echo yes)"
echo "via-chosen: $(get 127.0.0.1 $HP)"
echo "via-range: $(get 127.0.0.1 9001)"
echo "mac: $(cat "$ROOT/www/mac")"
$H run --network container:p --rootfs "$RF" -- sh -c 'ip -4 -o addr show eth0 | awk "{{print \"joined:\", \$4}}"'
$H run --network bridge --ip 10.89.0.40 --rootfs "$RF" -- true 2>&1 | sed 's/^/ip-taken: /' || true
$H run --network container:nosuch --rootfs "$RF" -- true 2>&1 | sed 's/^/no-container: /' || true
touch "$ROOT/www/stop"; wait $P
$H port p 2>&1 | sed 's/^/port-after: /' || true
echo "rules-left: $(nft list chain inet husk ports | grep -c dnat || true)"
{LEFTOVERS}"#
        ),
    );
    check_has(
        &o,
        &[
            "port: 81/tcp -> 127.0.0.1:9000\n",
            "port: 82/tcp -> 127.0.0.1:9001\n",
            "port: 53/udp -> 0.0.0.0:9500\n",
            "chosen-in-range: yes\n",
            "via-chosen: page\n",
            "via-range: page\n",
            "mac: 02:42:0a:59:00:28\n",
            "joined: 10.89.0.40/16\n",
            "ip-taken: husk: --ip 10.89.0.40: already leased to container p\n",
            "no-container: husk: --network container:nosuch: no running container of that name\n",
            "port-after: husk: port p: no running container",
            "rules-left: 0\n",
        ],
    );
}

#[test]
fn a_detached_container_on_a_named_network_is_resolved_and_shows_its_ports() {
    require_net!();
    let o = in_netns(
        "detached-named",
        &format!(
            r#"
ip link set lo up
H() {{ $HUSK --root "$ROOT" "$@"; }}
H network create dn >/dev/null
H run -d --name api --network dn --network-alias api-alias -p 127.0.0.1::80 --rootfs "$RF" sleep 600 >/dev/null
H run --network dn --rootfs "$RF" -- sh -c 'ping -c 1 -W 5 api-alias >/dev/null && echo reaches-detached; grep -w api /etc/hosts | sed "s/^/hosts: /"'
H ps --format '{{{{.Names}}}} {{{{.Ports}}}}' | sed 's/^/ps: /'
H port api | sed 's/^/port: /'
H network rm dn 2>&1 | sed 's/^/rm-in-use: /' || true
H stop -t 0 api >/dev/null
H network rm dn 2>&1 | sed 's/^/rm-stopped-user: /' || true
H network prune >/dev/null; H network ls -q | grep -qx dn && echo prune-keeps-dn
H rm -f api >/dev/null
H network rm dn >/dev/null && echo network-removed
rm -rf "$ROOT-fe"
echo "rules-left: $(nft list table inet husk | grep -c 'comment' || true)"
{LEFTOVERS}"#
        ),
    );
    let out = check_has(
        &o,
        &[
            "reaches-detached\n",
            "hosts: 10.91.0.2\tapi api-alias ",
            "ps: api 127.0.0.1:",
            "->80/tcp\n",
            "port: 80/tcp -> 127.0.0.1:",
            "rm-in-use: husk: network dn is in use by container api: remove it first\n",
            "rm-stopped-user: husk: network dn is in use by container api: remove it first\n",
            "prune-keeps-dn\n",
            "network-removed\n",
            "rules-left: 0\n",
        ],
    );
    // ps and port name the same host port.
    let ps = out
        .lines()
        .find_map(|l| l.strip_prefix("ps: api 127.0.0.1:"));
    let port = out
        .lines()
        .find_map(|l| l.strip_prefix("port: 80/tcp -> 127.0.0.1:"));
    assert_eq!(
        ps.map(|p| p.replace("->80/tcp", "")),
        port.map(String::from),
        "{out}"
    );
}

#[test]
fn publish_all_publishes_the_images_exposed_ports() {
    require_net!();
    if Command::new("umoci").arg("--version").output().is_err() {
        common::skip(common::Skip::Prerequisite, "no umoci binary");
        return;
    }
    // An image of the busybox rootfs exposing 80/tcp and 53/udp, in a store of the test's own.
    let o = in_netns(
        "publish-all",
        &format!(
            r#"
ip link set lo up
export HUSK_STORE="$ROOT/store"
mkdir -p "$ROOT/image/www"; cd "$ROOT/image"; echo page > www/index.html
tar --numeric-owner --owner=0 --group=0 -C "$RF" -cf l1.tar .
umoci init --layout oci; umoci new --image oci:t; umoci raw add-layer --image oci:t l1.tar
umoci config --image oci:t --config.exposedports 80/tcp --config.exposedports 53/udp \
  --config.cmd /bin/sh --architecture amd64 --os linux
$HUSK --root "$ROOT" run --name img -P --network bridge -v "$ROOT/image/www:/www" "oci:$ROOT/image/oci:t" sh -c '
  httpd -p 80 -h /www; n=0; until [ -e /www/stop ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done' & R=$!
i=0; until $HUSK --root "$ROOT" port img 80 >/dev/null 2>&1 || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
$HUSK --root "$ROOT" port img | sed 's/[0-9]*$/N/; s/^/port: /' | sort
HP=$($HUSK --root "$ROOT" port img 80 | cut -d: -f2)
i=0; until [ "$(printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 5 "$BB" nc 127.0.0.1 $HP | tail -1)" = page ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
echo "via-exposed: $(printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 10 "$BB" nc 127.0.0.1 $HP | tail -1)"
touch www/stop; wait $R
echo "rules-left: $(nft list chain inet husk ports | grep -c dnat || true)"
# An image's container is on the bridge by default (-p needs no --network); --rootfs stays on none.
$HUSK --root "$ROOT" run --rm -p 8090:80 "oci:$ROOT/image/oci:t" sh -c 'ip -4 -o addr show eth0 | awk "{{print \"image-default:\", \$4}}"; ip route | grep -q "^default via 10.89.0.1" && echo image-default-route'
$HUSK --root "$ROOT" run --rm --rootfs "$RF" sh -c 'echo "rootfs-default-links: $(ls /sys/class/net)"'
{LEFTOVERS}"#
        ),
    );
    check_has(
        &o,
        &[
            "image-default: 10.89.0.",
            "image-default-route\n",
            "rootfs-default-links: lo\n",
            "port: 53/udp -> 0.0.0.0:N\nport: 80/tcp -> 0.0.0.0:N\n",
            "via-exposed: page\n",
            "rules-left: 0\n",
        ],
    );
}

#[test]
fn connect_and_disconnect_change_a_running_containers_networks() {
    require_net!();
    let o = in_netns(
        "connect",
        &format!(
            r#"
H() {{ $HUSK --root "$ROOT" "$@"; }}
H network create n1 >/dev/null; H network create n2 >/dev/null
H run -d --name cx --network n1 --rootfs "$RF" sleep 600 >/dev/null
H run -d --name cpeer --network n2 --rootfs "$RF" sleep 600 >/dev/null
# Running: a second link now, eth1 on n2, the default route staying on eth0.
H network connect --alias cc n2 cx
H network connect n2 cx 2>&1 | sed 's/^/again: /' || true
H exec cx ip -4 -o addr show eth1 | awk '{{print "live-eth1:", $4}}'
H exec cx ip route | grep '^default' | sed 's/^/route: /'
H exec cx ping -c 1 -W 5 cpeer >/dev/null && echo cx-reaches-peer-by-name
H exec cpeer ping -c 1 -W 5 cc >/dev/null && echo peer-reaches-alias
H network rm n1 2>&1 | sed 's/^/in-use: /' || true
# Running: eth0 (n1) goes, its lease and names with it; n2 stays.
H network disconnect n1 cx
echo "links-after-disconnect: $(H exec cx ls /sys/class/net | tr '
' ' ')"
H exec cx ping -c 1 -W 5 cpeer >/dev/null && echo still-reaches-peer
# The /etc/hosts bound into it (n1's, its first network's) lives on: another network's names
# reach it.
H network create n3 >/dev/null
H run -d --name cpeer3 --network n3 --rootfs "$RF" sleep 600 >/dev/null
H network connect n3 cx
H exec cx cat /etc/hosts | grep -q 'cpeer3' && echo hosts-names-n3-peer
H network disconnect n3 cx
H network rm n1 >/dev/null && echo n1-free
# The bridge as eth0 again (no default route was left: it takes it); both at the next start.
H network connect bridge cx
H exec cx ip route | grep '^default' | sed 's/^/route-again: /'
H stop -t 0 cx >/dev/null; H start cx >/dev/null
H exec cx ip -4 -o addr | awk '$2 != "lo" {{print "restarted:", $2, $4}}' | sed 's/\.[0-9]*\//.N\//'
# On no network left it keeps its hosts file, released at its exit as a networked one's is.
H run -d --name cz --network n2 --rootfs "$RF" sleep 600 >/dev/null
CZ=$(readlink "$ROOT-fe/names/cz")
H network disconnect n2 cz
test -e "$ROOT/.net/endpoints/$CZ.hosts" && echo cz-keeps-hosts
H stop -t 0 cz >/dev/null
test -e "$ROOT/.net/endpoints/$CZ.hosts" || echo cz-hosts-gone-at-exit
# A connect to a container on no network that fails after its link was made keeps one too:
# gone with the container (the leftover check below).
H run -d --name cw --network none --rootfs "$RF" sleep 600 >/dev/null
HUSK_FAULT=connect/network.attached H network connect n2 cw 2>/dev/null || echo cw-connect-failed
test -e "$ROOT/.net/endpoints/$(readlink "$ROOT-fe/names/cw").hosts" && echo cw-keeps-hosts
H rm -f cx cpeer cpeer3 cz cw >/dev/null
H network rm n2 >/dev/null && echo n2-removed
H network rm n3 >/dev/null
rm -rf "$ROOT-fe"
{LEFTOVERS}"#
        ),
    );
    check_has(
        &o,
        &[
            "again: husk: network connect n2 cx: already on n2\n",
            "live-eth1: 10.91.1.3/24\n",
            "route: default via 10.91.0.1 dev eth0",
            "cx-reaches-peer-by-name\n",
            "peer-reaches-alias\n",
            "in-use: husk: network n1 is in use by container",
            "links-after-disconnect: eth1 lo \n",
            "still-reaches-peer\n",
            "hosts-names-n3-peer\n",
            "n1-free\n",
            "route-again: default via 10.89.0.1 dev eth0",
            "restarted: eth0 10.91.1.N/24\nrestarted: eth1 10.89.0.N/16\n",
            "cz-keeps-hosts\n",
            "cz-hosts-gone-at-exit\n",
            "cw-connect-failed\n",
            "cw-keeps-hosts\n",
            "n2-removed\n",
        ],
    );
}
