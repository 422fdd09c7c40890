//! A reader drained by a thread of its own into a short queue of chunks, so a layer's stages
//! (network + blob digest, gunzip + diffID digest, tar + file creation) run on different cores
//! instead of taking turns on one. The queue is bounded (DEPTH × CHUNK bytes in flight), so a
//! 1 GiB layer is streamed, never held. Spent chunks go back to the producer: a fresh 256 KiB
//! allocation is an mmap/munmap pair with musl's malloc, page faults and all, per chunk.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

const CHUNK: usize = 256 << 10;
const DEPTH: usize = 4;

/// The consumer's end: reads the chunks the producer thread queued, in order.
pub struct Ahead {
    rx: Receiver<io::Result<Vec<u8>>>,
    spent: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    /// The producer reported the end (or an error, returned once).
    done: bool,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(c)) if c.is_empty() => self.done = true,
                Ok(Ok(c)) => {
                    let old = std::mem::replace(&mut self.cur, c);
                    self.pos = 0;
                    // The producer may be gone (its end sent): the chunk is then just freed.
                    let _ = self.spent.send(old);
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The producer only hangs up after its end or error, which it sends first.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Fills a chunk (short only at the end), so the queue moves in large steps.
fn fill(src: &mut impl Read, mut c: Vec<u8>) -> io::Result<Vec<u8>> {
    c.resize(CHUNK, 0);
    let mut n = 0;
    while n < CHUNK {
        match src.read(&mut c[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.truncate(n);
    Ok(c)
}

fn produce(mut src: impl Read, tx: SyncSender<io::Result<Vec<u8>>>, spent: Receiver<Vec<u8>>) {
    loop {
        let c = fill(&mut src, spent.try_recv().unwrap_or_default());
        let last = !matches!(&c, Ok(c) if !c.is_empty());
        // A send fails once the consumer is done: what it left is the caller's to read.
        if tx.send(c).is_err() || last {
            return;
        }
    }
}

/// Runs `consume` on this thread over what a second thread reads from `src`; returns its result
/// and `src`, positioned after what was read (a chunk the consumer did not take is lost to the
/// caller, so `src` is for finishing a digest that already saw those bytes, not for reading on).
pub fn split<R: Read + Send, T>(mut src: R, consume: impl FnOnce(&mut Ahead) -> T) -> (T, R) {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(DEPTH);
        let (spent, back) = channel();
        let producer = s.spawn(move || {
            produce(&mut src, tx, back);
            src
        });
        let mut ahead = Ahead {
            rx,
            spent,
            cur: vec![],
            pos: 0,
            done: false,
        };
        let t = consume(&mut ahead);
        // Unblocks a producer waiting on a full queue.
        drop(ahead);
        match producer.join() {
            Ok(src) => (t, src),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `n` bytes (i as u8), then fails with `fail` if set.
    struct Src {
        i: usize,
        n: usize,
        fail: bool,
    }

    impl Read for Src {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.i == self.n {
                return match self.fail {
                    true => Err(io::Error::other("dropped")),
                    false => Ok(0),
                };
            }
            let k = buf.len().min(self.n - self.i).min(1000);
            for b in &mut buf[..k] {
                *b = self.i as u8;
                self.i += 1;
            }
            Ok(k)
        }
    }

    #[test]
    fn passes_every_byte_in_order() {
        let n = 3 * CHUNK + 12345;
        let (got, src) = split(
            Src {
                i: 0,
                n,
                fail: false,
            },
            |r| {
                let mut v = vec![];
                r.read_to_end(&mut v).map(|_| v)
            },
        );
        let got = got.unwrap();
        assert_eq!(got.len(), n);
        assert!(got.iter().enumerate().all(|(i, b)| *b == i as u8));
        assert_eq!(src.i, n);
    }

    #[test]
    fn an_error_reaches_the_consumer_after_the_bytes_before_it() {
        let n = CHUNK + 7;
        let (got, _) = split(
            Src {
                i: 0,
                n,
                fail: true,
            },
            |r| {
                let mut v = vec![];
                let e = r.read_to_end(&mut v).unwrap_err();
                (v.len(), e.to_string())
            },
        );
        assert_eq!(got, (CHUNK, "dropped".to_string()));
    }

    #[test]
    fn a_consumer_that_stops_early_does_not_wait_for_the_rest() {
        // Far more than the queue holds: the producer must stop when the consumer goes.
        let n = 64 * DEPTH * CHUNK;
        let (first, src) = split(
            Src {
                i: 0,
                n,
                fail: false,
            },
            |r| {
                let mut b = [0u8; 10];
                r.read_exact(&mut b).map(|_| b[9])
            },
        );
        assert_eq!(first.unwrap(), 9);
        assert!(src.i < n, "the producer read all {n} bytes");
    }
}
