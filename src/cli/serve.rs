//! serve: the server's runtime, from its flags.

use std::process::ExitCode;

use anyhow::Context;
use backset::units::parse_size;

use super::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the server's runtime")?;
    let config = backset::http::serve::Config {
        dir: args.outdir,
        listen: args.listen,
        cache_bytes: parse_size(&args.cache)?,
        max_viewers: args.max_viewers,
    };
    runtime.block_on(backset::http::serve::serve(config, |addr| {
        eprintln!("backset: serving on http://{addr}/");
    }))?;
    Ok(ExitCode::SUCCESS)
}
