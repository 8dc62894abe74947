//! The `superopt` binary: a thin layer over [`superopt::cli`].

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`superopt search ... | head`) instead of panicking.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    superopt::cli::run(superopt::cli::Cli::parse())
}
