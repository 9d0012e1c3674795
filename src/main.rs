//! The `backset` command: a thin layer that turns flags into the library's
//! plain configuration and the library's results into output and exit codes.

// Standard output goes through `cli::out`, never `print!`: a reader that
// went away must end the command quietly, not panic it.
#![deny(clippy::print_stdout)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        // Whoever read the output has what they wanted (`| head`): not a
        // failure, and nothing to say.
        Err(e) if cli::reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backset: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
