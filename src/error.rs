use std::path::PathBuf;

/// Everything that can go wrong in the library. Errors caused by input name
/// the byte offset in the capture and the box concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a fragmented MP4: byte {offset}: expected a box, found {found}")]
    NotMp4 { offset: u64, found: String },

    #[error("{kind} at byte {offset}: {reason}")]
    BadBox {
        offset: u64,
        kind: String,
        reason: String,
    },

    #[error("moof at byte {offset} comes before any moov: the capture has no initialisation")]
    MoofBeforeMoov { offset: u64 },

    #[error("truncated {kind} at byte {offset}: {have} of {need} bytes arrived before the end")]
    Truncated {
        offset: u64,
        kind: String,
        have: u64,
        need: u64,
    },

    #[error("the capture ended at byte {offset} before any complete fragment")]
    Empty { offset: u64 },

    /// The command line or a request asked for something that cannot be
    /// done as asked.
    #[error("{0}")]
    Usage(String),

    /// A server could not be reached or answered outside the protocol.
    #[error("{0}")]
    Network(String),

    /// A server answered, but not within the protocol: a body over its
    /// limit, a value out of range, a sequence with no successor (exit 2:
    /// retrying would get the same answer).
    #[error("{0}")]
    BadAnswer(String),

    /// A broken promise inside backset itself, never caused by input.
    #[error("internal error: {0}")]
    Internal(String),

    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    // Not marked as a source: the message already carries the reason, and
    // a chain would print it twice.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn bad_box(
        offset: u64,
        kind: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::BadBox {
            offset,
            kind: kind.to_string(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |err| Error::Io { path, err }
    }

    /// Whether the error comes from the input or the command line (exit 2)
    /// rather than from the machine, the network or backset itself (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Io { .. } | Error::Network(_) | Error::Internal(_)
        )
    }

    /// The exit status this error gives the command: 2 for bad input or
    /// usage, 1 for the machine, the network or an internal failure.
    pub fn exit_code(&self) -> u8 {
        if self.is_bad_input() {
            2
        } else {
            1
        }
    }
}
