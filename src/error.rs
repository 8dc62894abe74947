//! The library's one error type. Every variant renders as a single line that names what was
//! wrong and where (file, field, line), so the CLI can print it as is and exit non-zero.

use std::path::PathBuf;

/// Errors raised by the library. `main` maps each to exit code 2 (usage or input error),
/// except [`Error::NotVerified`] (exit code 1); a kernel that fails verification is not an
/// error but a [`crate::oracle::Verdict`], unless an operation that needs a verified kernel
/// (`superopt export`) refuses it.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields: what the variant's message shows
pub enum Error {
    /// A task name that is neither a built-in task nor a readable `.toml` file.
    #[error("unknown task '{name}' (known tasks: {known})")]
    UnknownTask { name: String, known: String },
    /// A task file that is not valid TOML or has a missing or bad field.
    #[error("{path}: {field}: {message}")]
    TaskSpec {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// Assembly text that could not be parsed or assembled.
    #[error("{path}:{line}: {message}")]
    Asm {
        path: String,
        line: usize,
        message: String,
    },
    /// A budget such as `abc` or `10x`.
    #[error("invalid budget '{0}': expected a positive duration such as 60s, 10m or 1h")]
    Budget(String),
    /// A budget longer than [`crate::task::MAX_BUDGET`], such as `40years`.
    #[error("invalid budget '{0}': the maximum is {max}", max = crate::task::MAX_BUDGET_TEXT)]
    BudgetTooLong(String),
    /// A search log that cannot be read back.
    #[error("{path}: {message}")]
    Log { path: PathBuf, message: String },
    /// The JIT could not map executable memory, or a similar runtime failure.
    #[error("{0}")]
    Runtime(String),
    /// `superopt export` refused a kernel: it is not verified, or a file it wrote failed
    /// verification when read back (the message names the file and the reason).
    #[error("{0}")]
    NotVerified(String),
    /// I/O with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
