//! Running external tools (GNU as; in the tests also gcc, rustc and cargo) with a time and a
//! memory limit, so that no input can make superopt hang or exhaust the machine through them.
//!
//! The child gets no standard input, runs in its own process group (so that the tools it
//! starts, such as gcc's `cc1` and `as`, are stopped with it) and has its address space
//! capped with `RLIMIT_AS` before it starts; the parent waits at most the wall-clock limit,
//! then kills the whole group.

use crate::error::{Error, Result};
use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// Limits for one run of an external tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time after which the tool's process group is killed.
    pub time: Duration,
    /// Address-space limit (`RLIMIT_AS`) in bytes, inherited by the tools it starts; `None`
    /// for no limit (rustc and cargo reserve large address ranges they never touch).
    pub memory: Option<u64>,
}

/// The limits for GNU as on a kernel file: 20 s and 1 GiB. A kernel of a few hundred lines
/// assembles in milliseconds with a few MB; only runaway input (which the parser refuses
/// before it reaches GNU as) could come near either.
pub const AS_LIMITS: Limits = Limits {
    time: Duration::from_secs(20),
    memory: Some(1 << 30),
};

/// Runs `cmd` (with `what`, e.g. `GNU as`, naming it in messages) under `limits` and returns
/// its output. Standard output and error are captured in full.
///
/// Errors ([`Error::Runtime`], one line each):
/// * `GNU as not found: install binutils`-style: `{what} not found ({program})` when the
///   program does not exist, `cannot run {what}: ...` for other spawn failures;
/// * `{what} ran past its time limit of 20 s and was stopped`;
/// * `{what} ran out of its memory limit of 1024 MiB and was stopped` when the child died
///   from a signal or reported memory exhaustion while a memory limit was set.
pub fn run(cmd: &mut Command, what: &str, limits: Limits) -> Result<Output> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(bytes) = limits.memory {
        // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Runtime(format!("{what} not found ({program})")),
        _ => Error::Runtime(format!("cannot run {what}: {e}")),
    })?;
    let readers = [
        spawn_reader(&mut child, true),
        spawn_reader(&mut child, false),
    ];
    let status = match child.wait_timeout(limits.time) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_group(&mut child);
            return Err(Error::Runtime(format!(
                "{what} ran past its time limit of {} s and was stopped",
                limits.time.as_secs_f64()
            )));
        }
        Err(e) => {
            kill_group(&mut child);
            return Err(Error::Runtime(format!("cannot wait for {what}: {e}")));
        }
    };
    // The group may still hold children of the tool that keep the pipes open.
    kill_group(&mut child);
    let [stdout, stderr] = readers.map(|r| r.join().unwrap_or_default());
    if let Some(bytes) = limits.memory {
        use std::os::unix::process::ExitStatusExt;
        let text = String::from_utf8_lossy(&stderr).to_ascii_lowercase();
        let exhausted = [
            "memory exhausted",
            "cannot allocate memory",
            "out of memory",
        ]
        .iter()
        .any(|m| text.contains(m));
        if exhausted || status.signal().is_some() {
            return Err(Error::Runtime(format!(
                "{what} ran out of its memory limit of {} MiB and was stopped",
                bytes >> 20
            )));
        }
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads the child's standard output (or error) to the end on a thread of its own.
fn spawn_reader(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<Vec<u8>> {
    let pipe: Option<Box<dyn Read + Send>> = if stdout {
        child.stdout.take().map(|p| Box::new(p) as _)
    } else {
        child.stderr.take().map(|p| Box::new(p) as _)
    };
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Kills the child's process group (the child leads it) and reaps the child.
fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the group the child leads; it has no
    // memory-safety preconditions.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_captured() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            "sh",
            AS_LIMITS,
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn time_limit_stops_the_whole_group() {
        let limits = Limits {
            time: Duration::from_millis(300),
            memory: None,
        };
        let t = std::time::Instant::now();
        // The child's own child keeps the pipe open: it must be killed too.
        let err = run(
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            "sh",
            limits,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh ran past its time limit of 0.3 s and was stopped"
        );
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn memory_limit_is_reported() {
        let limits = Limits {
            time: Duration::from_secs(20),
            memory: Some(64 << 20),
        };
        // python3 or perl would do; a shell builtin cannot allocate. `head -c` of /dev/zero
        // into a shell variable grows the shell past 64 MiB.
        let err = run(
            Command::new("sh").args(["-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)"]),
            "sh",
            limits,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh ran out of its memory limit of 64 MiB and was stopped"
        );
    }

    #[test]
    fn missing_program() {
        let err = run(
            &mut Command::new("superopt-no-such-tool"),
            "tool",
            AS_LIMITS,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "tool not found (superopt-no-such-tool)");
    }
}
