//! husk: the command line. runc's CLI for engines, and (in `frontend`) the daemonless `husk run`.
#![forbid(unsafe_code)]

mod cli;
mod frontend;

use clap::Parser;
use husk_runtime::{Error, log};
use std::io::Write;

fn main() {
    let cli = cli::Cli::parse();
    let frontend = cli.is_frontend();
    let fmt = if cli.log_format == "json" { log::Format::Json } else { log::Format::Text };
    if let Err(e) = log::init(cli.log.as_deref(), fmt, cli.debug) {
        eprintln!("husk: open log file: {e}");
        std::process::exit(1);
    }
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            log::error(&msg);
            let _ = writeln!(std::io::stderr(), "husk: {msg}");
            // docker's convention for the front end: 125 is the runtime's own failure.
            match (&e, frontend) {
                (_, true) => frontend::error_code(&e),
                (Error::NotExist(_), false) => 1,
                _ => 1,
            }
        }
    };
    std::process::exit(code);
}
