//! A pull's progress on stderr: on a terminal one line per layer redrawn in place (bytes,
//! rate, ETA), otherwise a plain line when a layer starts, every 10 s while it runs, and when
//! it ends; nothing with `-q`. A layer is downloaded and unpacked in one pass, so its bytes
//! count both; one that is only unpacked (its blob already stored) says so.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Plain,
    Terminal,
}

impl Mode {
    /// Terminal when stderr is one, unless `quiet`.
    pub fn detect(quiet: bool) -> Mode {
        use std::io::IsTerminal;
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Waiting,
    Pulling,
    Unpacking,
    Done,
    Exists,
    Failed,
}

pub struct Bar {
    /// The blob digest's first 12 hex digits, as docker shows a layer.
    pub label: String,
    pub total: u64,
    pub done: AtomicU64,
    state: AtomicU8,
    started: Mutex<Option<Instant>>,
    took: Mutex<Option<Duration>>,
}

impl Bar {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Waiting,
            1 => State::Pulling,
            2 => State::Unpacking,
            3 => State::Done,
            4 => State::Exists,
            _ => State::Failed,
        }
    }
}

pub struct Progress {
    pub mode: Mode,
    pub bars: Vec<Bar>,
    drawn: Mutex<(usize, Instant)>,
}

pub fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
}

impl Progress {
    pub fn new(mode: Mode, layers: &[(String, u64)]) -> Progress {
        Progress {
            mode,
            bars: layers
                .iter()
                .map(|(d, size)| Bar {
                    label: d.trim_start_matches("sha256:").chars().take(12).collect(),
                    total: *size,
                    done: AtomicU64::new(0),
                    state: AtomicU8::new(State::Waiting as u8),
                    started: Mutex::new(None),
                    took: Mutex::new(None),
                })
                .collect(),
            drawn: Mutex::new((0, Instant::now())),
        }
    }

    /// A line of its own (before or after the layer lines).
    pub fn say(&self, line: &str) {
        if self.mode != Mode::Quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// A note that only plain output has room for (a terminal shows the layer's state).
    pub fn say_plain(&self, line: &str) {
        if self.mode == Mode::Plain {
            self.say(line);
        }
    }

    pub fn set(&self, i: usize, s: State) {
        let b = &self.bars[i];
        b.state.store(s as u8, Ordering::Relaxed);
        let mut started = b.started.lock().unwrap_or_else(|p| p.into_inner());
        match s {
            State::Pulling | State::Unpacking => {
                b.done.store(0, Ordering::Relaxed);
                started.get_or_insert_with(Instant::now);
            }
            State::Done | State::Failed => {
                *b.took.lock().unwrap_or_else(|p| p.into_inner()) = started.map(|t| t.elapsed());
            }
            _ => {}
        }
        drop(started);
        if self.mode == Mode::Plain && s != State::Waiting {
            self.say(&self.line(i));
        }
    }

    fn line(&self, i: usize) -> String {
        let b = &self.bars[i];
        let done = b.done.load(Ordering::Relaxed).min(b.total);
        let started = *b.started.lock().unwrap_or_else(|p| p.into_inner());
        let took = *b.took.lock().unwrap_or_else(|p| p.into_inner());
        let secs = took
            .or(started.map(|t| t.elapsed()))
            .map_or(0.0, |d| d.as_secs_f64());
        let rate = if secs > 0.05 { done as f64 / secs } else { 0.0 };
        let rate_s = format!("{:.1} MiB/s", rate / (1 << 20) as f64);
        match b.state() {
            State::Waiting => format!("{}: Waiting ({})", b.label, mib(b.total)),
            State::Exists => format!("{}: Already exists", b.label),
            State::Failed => format!("{}: Failed after {}", b.label, mib(done)),
            State::Done => format!(
                "{}: Pull complete ({} in {secs:.1} s, {rate_s})",
                b.label,
                mib(b.total)
            ),
            s => {
                let eta = if rate > 0.0 {
                    format!("{:.0} s", (b.total - done) as f64 / rate)
                } else {
                    "-".into()
                };
                let verb = if s == State::Pulling {
                    "Downloading+unpacking"
                } else {
                    "Unpacking"
                };
                format!(
                    "{}: {verb} {} / {}  {rate_s}  ETA {eta}",
                    b.label,
                    mib(done),
                    mib(b.total)
                )
            }
        }
    }

    /// Called by the pull's main thread while layers run (and once at the end): redraws the
    /// terminal's lines, or prints a plain line for each layer still running every 10 s.
    pub fn tick(&self, last: bool) {
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        match self.mode {
            Mode::Quiet => {}
            Mode::Terminal => {
                let mut out = String::new();
                if drawn.0 > 0 {
                    out.push_str(&format!("\x1b[{}A", drawn.0));
                }
                for i in 0..self.bars.len() {
                    out.push_str(&format!("\r\x1b[2K{}\n", self.line(i)));
                }
                drawn.0 = self.bars.len();
                let _ = std::io::stderr().write_all(out.as_bytes());
            }
            Mode::Plain => {
                if !last && drawn.1.elapsed() >= Duration::from_secs(10) {
                    drawn.1 = Instant::now();
                    for i in 0..self.bars.len() {
                        if matches!(self.bars[i].state(), State::Pulling | State::Unpacking) {
                            self.say(&self.line(i));
                        }
                    }
                }
            }
        }
    }
}
