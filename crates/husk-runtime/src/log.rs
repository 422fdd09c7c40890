//! runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`. containerd reads
//! the JSON lines' `level`, `msg` and `time` keys and shows the last `error` line to users, so
//! the error line must carry the real cause.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, at start-up. Without a file, debug lines go to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

fn json_escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let time = crate::state::rfc3339_now();
    let line = match l.format {
        Format::Json => format!(
            "{{\"level\":\"{level}\",\"msg\":{},\"time\":\"{time}\"}}\n",
            json_escape(msg)
        ),
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", json_escape(msg)),
    };
    match &l.file {
        Some(f) => {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None if level != "error" => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        // Errors without a log file are printed by the caller, once.
        None => {}
    }
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: impl FnOnce() -> String) {
    if debug_enabled() {
        write("debug", &msg());
    }
}
