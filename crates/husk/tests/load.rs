//! Load (issue 19): many containers at once on one state root, with 0 errors and 0 leftovers,
//! while `list` and `ps` keep answering. Bounded by counts and generous deadlines, never timed:
//! how fast it goes is bench/'s business.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `list` and `ps -a` in a loop until `done`; each call must succeed. Returns how many
/// calls were made (at least one of each, made while the load ran).
fn keep_listing(env: &Env, done: &AtomicBool) -> usize {
    let mut n = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        for args in [&["list"][..], &["ps", "-a"][..]] {
            let o = Command::new(HUSK)
                .arg("--root")
                .arg(&env.root)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(o.status.success(), "{args:?} under load: {}", stderr(&o));
            n += 1;
        }
        if finished {
            return n;
        }
    }
}

#[test]
fn two_hundred_lifecycles_sixteen_at_once_on_one_root() {
    require_root!();
    let mut env = Env::new("load-cycles");
    env.args(&["/bin/true"]);
    env.write_config();
    const CYCLES: usize = 200;
    const PARALLEL: usize = 16;
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let b = env.bundle.to_string_lossy().into_owned();
    // Output in files: a created container's init inherits husk's stdio and would hold a pipe
    // open until it is started.
    let husk = |args: &[&str]| {
        let mut cmd = Command::new(HUSK);
        cmd.arg("--root").arg(&env.root).args(args);
        env.capture_as_is(cmd)
    };
    let calls = std::thread::scope(|s| {
        let lister = s.spawn(|| keep_listing(&env, &done));
        let workers: Vec<_> = (0..PARALLEL)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= CYCLES {
                            return;
                        }
                        let id = env.id(&format!("load{i}"));
                        for args in [&["create", "-b", &b, &id][..], &["start", &id][..]] {
                            let o = husk(args);
                            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
                        }
                        // /bin/true exits by itself: a plain delete once it has.
                        wait_until(PATIENCE, "the container stops", || {
                            stdout(&husk(&["state", &id])).contains("\"stopped\"")
                        });
                        let o = husk(&["delete", &id]);
                        assert!(o.status.success(), "delete {id}: {}", stderr(&o));
                    }
                })
            })
            .collect();
        let mut failed = None;
        for w in workers {
            if let Err(e) = w.join() {
                failed = Some(e);
            }
        }
        done.store(true, Ordering::SeqCst);
        let calls = lister.join();
        if let Some(e) = failed {
            std::panic::resume_unwind(e);
        }
        calls.unwrap()
    });
    assert!(calls >= 2);
    let left: Vec<_> = std::fs::read_dir(&env.root).unwrap().flatten().collect();
    assert!(left.is_empty(), "state left: {left:?}");
    for i in 0..CYCLES {
        let id = env.id(&format!("load{i}"));
        assert_no_cgroup(&id);
        assert!(procs_naming(&id).is_empty(), "{id} left running");
    }
    assert!(fds_into(&env.dir).is_empty(), "{:?}", fds_into(&env.dir));
}

#[test]
fn a_hundred_front_end_runs_at_once_with_bridge_networking() {
    require_root!();
    for t in ["unshare", "ip", "nft", "timeout"] {
        let ok = Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        require!(ok, "no {t} binary");
    }
    let env = Env::new("load-runs");
    // NETWORK RULE (network.rs): all of it in a network namespace of the test's own. Half the
    // runs on the bridge with a published port (leases, veths and DNAT rules made and removed
    // concurrently), half with none; `list` and `ps -a` loop meanwhile and must keep answering.
    let script = r#"
: >"$DIR/codes"
for i in $(seq 1 100); do
  net="--network none"; [ $((i % 2)) = 0 ] && net="--network bridge -p $((20000 + i)):80"
  ( "$HUSK" --root "$ROOT" run $net --rootfs "$RF" -- /bin/true; echo "$i $?" >>"$DIR/codes" ) &
done
listed=0
while [ "$(wc -l <"$DIR/codes" 2>/dev/null || echo 0)" -lt 100 ]; do
  "$HUSK" --root "$ROOT" list >/dev/null || { echo "list failed"; exit 1; }
  "$HUSK" --root "$ROOT" ps -a >/dev/null || { echo "ps failed"; exit 1; }
  listed=$((listed + 1))
done
wait
echo "listed $listed"
echo "failed: $(awk '$2 != 0' "$DIR/codes" | wc -l)"
# An exited container's veth pair goes with its network namespace, which the kernel tears down
# on a workqueue of its own after the run has returned (husk does not wait for it: see
# husk_net's VethEnd::WithNetns). Wait for that, bounded, rather than count too early.
links() { ip -o link show | grep -c ' hk' || true; }
tries=0
while [ "$(links)" != 0 ] && [ $tries -lt 600 ]; do sleep 0.2; tries=$((tries + 1)); done
echo "links: $(links)"
echo "leases: $(ls "$ROOT/.net/leases" 2>/dev/null | wc -l)"
echo "rules: $(nft list chain inet husk ports | grep -c dnat || true)"
echo "states: $(ls "$ROOT" | grep -v '^\.' | wc -l)"
"#;
    let o = Command::new("timeout")
        .args(["600", "unshare", "-n", "sh", "-euc", script])
        .env("HUSK", HUSK)
        .env("ROOT", &env.root)
        .env("DIR", &env.dir)
        .env("RF", rootfs())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    let codes = std::fs::read_to_string(env.dir.join("codes")).unwrap_or_default();
    assert!(
        o.status.success(),
        "{:?}\n{out}\n{}\ncodes: {codes}",
        o.status,
        stderr(&o)
    );
    for want in [
        "failed: 0\n",
        "links: 0\n",
        "leases: 0\n",
        "rules: 0\n",
        "states: 0\n",
    ] {
        assert!(
            out.contains(want),
            "{want:?} not in:\n{out}\n{}",
            stderr(&o)
        );
    }
    assert!(!out.contains("listed 0\n"), "{out}");
    assert!(fds_into(&env.dir).is_empty(), "{:?}", fds_into(&env.dir));
}
