//! The `backset` command: a thin layer that turns flags into the library's
//! plain configuration and the library's results into output and exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("backset: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
