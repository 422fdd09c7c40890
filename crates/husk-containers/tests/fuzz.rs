//! Fuzz target: detached containers' log files (k8s-file records, rotated to `ctr.log.1`).
//! Records written by the monitor's `Writer` read back by `logs` as they were written, and any
//! bytes at all in the log files (a disk that filled up mid-record, a hand edit) read without a
//! panic, whatever `--tail`, `--since`, `--until` and `-t` say.

use husk_containers::Store;
use husk_containers::logs::{Options, Writer, show};
use husk_fuzz::{fuzz, proptest::prelude::*};
use std::path::PathBuf;

fn scratch() -> (PathBuf, Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fuzz-logs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    let s = Store::for_root(&d);
    std::fs::create_dir_all(s.log_path("c").parent().unwrap()).unwrap();
    (d, s)
}

/// `--tail`, `-t`, `--since`, `--until` (a tuple: Options has no Debug for proptest to print).
type Opts = (Option<usize>, bool, Option<u64>, Option<u64>);

fn options((tail, timestamps, since, until): Opts) -> Options {
    Options {
        follow: false,
        tail,
        timestamps,
        since,
        until,
    }
}

#[test]
fn written_records_read_back_as_written() {
    let record = (any::<bool>(), any::<bool>(), "[^\n]{0,40}");
    fuzz(
        "log records round trip",
        prop::collection::vec(record, 0..30),
        |records| {
            let (d, s) = scratch();
            let mut w = Writer::open(s.log_path("c"), u64::MAX);
            let mut want = [Vec::new(), Vec::new()];
            for (err, full, line) in &records {
                let stream: &[u8] = if *err { b"stderr" } else { b"stdout" };
                w.record(stream, *full, line.as_bytes());
                want[*err as usize].extend_from_slice(line.as_bytes());
                if *full {
                    want[*err as usize].push(b'\n');
                }
            }
            w.flush();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let o = options((None, false, None, None));
            show(&s, "c", &o, &mut out, &mut err).unwrap();
            let _ = std::fs::remove_dir_all(&d);
            assert_eq!(
                (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err)),
                (
                    String::from_utf8_lossy(&want[0]),
                    String::from_utf8_lossy(&want[1])
                )
            );
        },
    );
}

#[test]
fn any_bytes_in_the_log_files() {
    let line = prop_oneof![
        "[0-9TZ:.-]{0,32} (stdout|stderr|x) (F|P|) [^\n]{0,20}",
        prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let file = || prop::collection::vec(line.clone(), 0..12).prop_map(|l| l.join("\n"));
    fuzz(
        "log files (any bytes)",
        (file(), file(), any::<Opts>(), 1u64..512),
        |(cur, old, o, max)| {
            let o = options(o);
            let (d, s) = scratch();
            let path = s.log_path("c");
            std::fs::write(&path, &cur).unwrap();
            std::fs::write(path.with_extension("log.1"), &old).unwrap();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let _ = show(&s, "c", &o, &mut out, &mut err);
            // And the writer appends to (and rotates) whatever is there.
            let mut w = Writer::open(path, max);
            w.record(b"stdout", true, b"after");
            w.flush();
            let _ = show(&s, "c", &o, &mut out, &mut err);
            let _ = std::fs::remove_dir_all(&d);
        },
    );
}
