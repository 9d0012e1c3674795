//! Standard output for every command. `println!` panics when the reader
//! has gone away (EPIPE: `backset inspect … | head -1`); [`outln!`] and
//! [`out!`] return the failure instead, a reader that went away as
//! [`ReaderGone`], which `main` turns into a quiet exit 0: what a filter
//! in a pipeline is expected to do, and what `follow` already did.

use std::fmt::Arguments;
use std::io::Write;

/// The reader of standard output went away (EPIPE). Not a failure of the
/// command: `main` exits 0 and says nothing.
#[derive(Debug, thiserror::Error)]
#[error("the reader of standard output went away")]
pub struct ReaderGone;

/// `println!` that returns an `anyhow::Result<()>` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns an `anyhow::Result<()>` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Writes to standard output; a broken pipe is [`ReaderGone`].
pub fn write(args: Arguments) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            anyhow::Error::new(ReaderGone)
        } else {
            anyhow::Error::new(e).context("writing to standard output")
        }
    })
}

/// Whether the error is a reader that went away.
pub fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<ReaderGone>().is_some())
}
