//! husk: the command line. runc's CLI for engines, and (in `frontend`) the daemonless `husk run`.
#![forbid(unsafe_code)]

mod cli;
mod containers;
mod exec;
mod features;
mod frontend;
mod images;
mod network;
mod out;
mod reaper;
mod update;

use husk_runtime::log;
use std::io::Write;

/// A bump arena for the life of a command (husk_sys::alloc says why).
#[global_allocator]
static ALLOC: husk_sys::alloc::Arena = husk_sys::alloc::Arena::new();

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // The per-container monitor (husk_containers::monitor) is this binary under another name.
    if argv.first().map(String::as_str) == Some(husk_containers::watch::ARGV0) {
        std::process::exit(husk_containers::monitor::main(&argv));
    }
    if argv.first().map(String::as_str) == Some(reaper::PATH) {
        std::process::exit(reaper::main(&argv));
    }
    use clap::{CommandFactory, FromArgMatches};
    let parsed = cli::Cli::command()
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m).map(|c| (c, m)));
    let cli = match parsed {
        Ok((mut c, m)) => {
            if let cli::Cmd::Run(r) = &mut c.cmd {
                r.front_end_flags = cli::front_end_flags(&m);
                r.note_dashes(&argv);
            }
            c
        }
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // docker returns 125 for a bad front-end option; runc's usage errors are 1.
                _ if cli::looks_like_frontend_run() => 125,
                _ => 1,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let frontend = cli.is_frontend();
    let fmt = if cli.log_format == "json" {
        log::Format::Json
    } else {
        log::Format::Text
    };
    if let Err(e) = log::init(cli.log.as_deref(), fmt, cli.debug) {
        let path = cli.log.as_deref().unwrap_or(std::path::Path::new(""));
        eprintln!(
            "husk: open log file {}: {}",
            path.display(),
            husk_runtime::errno_text(&e)
        );
        std::process::exit(1);
    }
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            log::error(&msg);
            let _ = writeln!(std::io::stderr(), "husk: {msg}");
            // docker's convention for the front end: 125 is the runtime's own failure.
            if frontend {
                frontend::error_code(&e)
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
