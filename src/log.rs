//! Search logs: one JSON file per search, `search-logs/<task>/<UTC time>-seed<N>.json`,
//! written atomically (a temporary file in the same folder, then a rename), so a crash never
//! leaves a truncated log behind. The format is versioned by [`LOG_VERSION`] and documented
//! in `search-logs/README.md`.
//!
//! A search writes its log when it starts, again every checkpoint interval while it runs
//! (`stop_reason` `running`: a SIGKILL loses at most one interval), and at the end. Besides
//! the result, version 2 logs hold what `superopt replay` and `superopt search --resume` need:
//! the moves of every improvement, the merged MCTS tree, the search's counters and each
//! worker's random stream.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the log format; bumped on any incompatible change. Version 2 added the
/// replay and resume fields (all optional, so version 1 logs still read).
pub const LOG_VERSION: u32 = 2;

/// `stop_reason` of a log written while its search was still running (a checkpoint).
pub const RUNNING: &str = "running";

/// One improvement of the best kernel during a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Improvement {
    /// Program length in instructions.
    pub length: usize,
    /// Seconds after the start.
    pub found_at_s: f64,
    /// Programs explored (expansions, all threads) before it was found.
    pub programs_explored: u64,
    /// Under `--objective latency`, the improvement's latency in the static model (cycles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cycles: Option<f64>,
    /// The solution's moves, as indices into the game's move table (version 2; what
    /// `--resume` restores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<crate::search::Action>>,
}

/// The best kernel of a search, with the oracle's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedKernel {
    /// Program length in instructions (`ret` excluded).
    pub length: usize,
    /// Whether both oracle stages passed.
    pub verified: bool,
    /// For a kernel proved on the emulator but not run for want of CPU features
    /// ([`crate::oracle::Status::ProvedNotRun`]): `proved, not run: needs avx512f, avx512vl,
    /// which this CPU lacks`. `verified` is then false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    /// The checks that passed.
    pub checks: Vec<String>,
    /// GNU AT&T syntax, one instruction per line.
    pub program_att: Vec<String>,
    /// Intel syntax, one instruction per line.
    pub program_intel: Vec<String>,
    /// Under `--objective latency`: how the kernel was chosen by measured latency (absent in
    /// length searches and in logs written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LoggedLatency>,
}

/// The latency figures of a kernel chosen by `search --objective latency`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedLatency {
    /// The meter (`perf`, `tsc`).
    pub meter: String,
    /// Its unit (`cycles`, `ref-cycles`).
    pub unit: String,
    /// Per call, in `unit`: the median over rounds of each round's quantile.
    pub cycles: f64,
    /// 95% interval of `cycles`.
    pub interval: (f64, f64),
    /// The classic network kernel's figure, measured in the same run.
    pub network_cycles: Option<f64>,
    /// `cycles / network_cycles`.
    pub ratio: Option<f64>,
    /// The static model's figure for the kernel, in cycles.
    pub model_cycles: f64,
    /// Distinct finalists measured (the kernels the search found within two model cycles of
    /// its best).
    pub finalists: usize,
    /// Whether the kernel is the classic network itself: no finalist measured clearly faster
    /// (its whole 95% interval below the network's, in each of two runs; before issue 13's
    /// second step, below the network's figure in one run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// The second run of the final measurement: the kernel's figure and 95% interval, and
    /// the network's 95% interval in each run (`[first, second]`). Absent in logs written
    /// before it existed and under the model meter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_run: Option<SecondRun>,
    /// With `baseline`: the fastest kernel the search itself found, which lost to the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<RunnerUp>,
}

/// The second run of a latency search's final measurement ([`LoggedLatency::second_run`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecondRun {
    /// Per call, in the figure's unit.
    pub cycles: f64,
    /// 95% interval of `cycles`.
    pub interval: (f64, f64),
    /// The classic network's 95% interval in the first and the second run.
    pub network_intervals: Option<[(f64, f64); 2]>,
}

/// The search's own fastest kernel when the classic network was kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunnerUp {
    /// GNU AT&T syntax, one instruction per line (proved on the emulator, not run natively).
    pub program_att: Vec<String>,
    /// Per call, in the figure's unit.
    pub cycles: f64,
    /// 95% interval of `cycles`.
    pub interval: (f64, f64),
    /// The static model's figure, in cycles.
    pub model_cycles: f64,
}

impl SearchLog {
    /// The latency model's table the search costed with: the config's `uarch`, Zen 4 for
    /// logs written before it was recorded or naming no known table (replay says which).
    pub fn uarch(&self) -> crate::latency::model::Uarch {
        self.config
            .get("uarch")
            .and_then(|u| serde_json::from_value(u.clone()).ok())
            .unwrap_or_default()
    }

    /// Whether the log is of a `--objective latency` search whose kernel a real meter chose
    /// (tsc or perf), not the model alone (`--meter model`).
    pub fn measured_latency(&self) -> bool {
        self.config.get("objective").and_then(|o| o.as_str()) == Some("latency")
            && self
                .best
                .as_ref()
                .and_then(|b| b.latency.as_ref())
                .is_some_and(|l| l.meter != "model")
    }
}

/// Everything a search log holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchLog {
    /// [`LOG_VERSION`].
    pub version: u32,
    /// superopt's version.
    pub superopt: String,
    /// Task name and where its spec came from.
    pub task: String,
    /// Where the task spec came from (`builtin:sort3` or a path).
    pub task_source: String,
    /// Search settings.
    pub config: serde_json::Value,
    /// The `--seed` of the run.
    pub seed: u64,
    /// UTC start time, RFC 3339.
    pub started: String,
    /// Wall time of the search in seconds.
    pub elapsed_s: f64,
    /// `budget`, `target`, `exhausted`, `interrupted` or `expansions`.
    pub stop_reason: String,
    /// Programs explored (expansions, all threads).
    pub programs_explored: u64,
    /// Improvements of the best length, in order.
    pub timeline: Vec<Improvement>,
    /// The best kernel, if any.
    pub best: Option<LoggedKernel>,
    /// Hash of the game's move table (`fnv64:` and 16 hex digits), so that action indices are
    /// read against the table they index (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves_hash: Option<String>,
    /// The policy/value network that guided the search, if one did (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRef>,
    /// The MCTS episodes merged into one tree, nodes under a visit threshold dropped
    /// (version 2; absent for A*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<crate::search::TreeSnapshot>,
    /// Counters over the whole search (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::search::SearchStats>,
    /// What `--resume` needs beyond the rest (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeRecord>,
}

/// The network that guided a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkRef {
    /// The weights' path as given (`nets/sort3.safetensors`).
    pub path: String,
    /// Hash of the weights file's bytes (`fnv64:` and 16 hex digits).
    pub hash: String,
}

/// The state a resumed search continues from, beside the log's other fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// Each MCTS worker's random stream after its last finished episode (`null` for a worker
    /// that finished none).
    pub rngs: Vec<Option<crate::search::RngState>>,
    /// Each process that ran the search (the first, then each `--resume`), in order.
    pub runs: Vec<RunRecord>,
}

/// One process's part of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// UTC start, RFC 3339.
    pub started: String,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// Why it stopped (`running` while it runs).
    pub stop_reason: String,
    /// Programs explored by the search when it stopped (cumulative).
    pub programs_explored: u64,
}

/// `fnv64:` and the 16 hex digits of [`crate::search::hash_bytes`] over `bytes`: the hashes
/// logs record (moves, network weights). Not cryptographic; it detects change, not tampering.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("fnv64:{:016x}", crate::search::hash_bytes(0, bytes))
}

impl SearchLog {
    /// The log's path under `dir`: `<dir>/<task>/<UTC time>-seed<N>.json`, the time as
    /// `2026-11-29T21-50-20Z`. [`SearchLog::write_new`] adds `-2`, `-3`, ... if taken.
    pub fn default_path(
        dir: &Path,
        task: &str,
        started: time::OffsetDateTime,
        seed: u64,
    ) -> PathBuf {
        let stamp = started
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]-[minute]-[second]Z"
            ))
            .expect("formatting a UTC time");
        dir.join(task).join(format!("{stamp}-seed{seed}.json"))
    }

    /// Writes the log atomically under `path`, or under `path` with `-2`, `-3`, ... before
    /// `.json` if that file exists, never replacing an existing file (even one another process
    /// creates at the same moment). Returns the path written.
    ///
    /// Errors: [`Error::Io`] naming the path.
    pub fn write_new(&self, path: &Path) -> Result<PathBuf> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = serde_json::to_string_pretty(self).expect("a search log always serialises");
        for k in 1.. {
            let candidate = if k == 1 {
                path.to_path_buf()
            } else {
                dir.join(format!("{stem}-{k}.json"))
            };
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
            tmp.write_all(text.as_bytes())
                .map_err(|e| Error::io(&candidate, e))?;
            tmp.as_file()
                .sync_all()
                .map_err(|e| Error::io(&candidate, e))?;
            match tmp.persist_noclobber(&candidate) {
                Ok(_) => {
                    readable(&candidate)?;
                    return Ok(candidate);
                }
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&candidate, e.error)),
            }
        }
        unreachable!("some suffix is free")
    }

    /// Writes the log atomically to `path`, creating folders as needed.
    ///
    /// Errors: [`Error::Io`] naming the path.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a search log always serialises");
        write_atomic_with(path, |tmp| {
            std::fs::write(tmp, &text).map_err(|e| Error::io(path, e))
        })
    }

    /// Reads a log back.
    ///
    /// Errors ([`Error::Log`], one line naming the problem):
    /// * `truncated search log: the JSON ends early (line L, column C)`;
    /// * `corrupted search log: <what the JSON parser or a field check found>`;
    /// * `not a search log: no "version" field`;
    /// * `search log version V is newer than this superopt reads (1 to 2); update superopt`;
    /// * [`Error::Io`] when the file cannot be read (a missing file, a folder).
    pub fn read(path: &Path) -> Result<SearchLog> {
        let bad = |message: String| Error::Log {
            path: path.into(),
            message,
        };
        // Regular files only: reading a FIFO would wait forever.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            return Err(bad("not a regular file".into()));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_eof() {
                bad(format!(
                    "truncated search log: the JSON ends early (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            } else {
                bad(format!("corrupted search log: {e}"))
            }
        })?;
        let Some(version) = v.get("version") else {
            return Err(bad("not a search log: no \"version\" field".into()));
        };
        let Some(version) = version.as_u64() else {
            return Err(bad(format!(
                "corrupted search log: \"version\" is {version}, not a whole number"
            )));
        };
        if version > LOG_VERSION as u64 {
            return Err(bad(format!(
                "search log version {version} is newer than this superopt reads (1 to {LOG_VERSION}); update superopt"
            )));
        }
        if version == 0 {
            return Err(bad(
                "corrupted search log: version 0 (versions start at 1)".into()
            ));
        }
        let log: SearchLog =
            serde_json::from_value(v).map_err(|e| bad(format!("corrupted search log: {e}")))?;
        log.check()
            .map_err(|e| bad(format!("corrupted search log: {e}")))?;
        Ok(log)
    }

    /// Checks what serde cannot: numbers in range and a well-formed tree (every child index
    /// in range and after its parent, so no cycles; moves on every node but the root;
    /// counters by depth of equal lengths). Errors: what is wrong, one line.
    fn check(&self) -> std::result::Result<(), String> {
        let seconds = |what: String, x: f64| {
            if x.is_finite() && (0.0..1e9).contains(&x) {
                Ok(())
            } else {
                Err(format!("{what} is {}, not a number of seconds", short(x)))
            }
        };
        seconds("elapsed_s".into(), self.elapsed_s)?;
        const MAX_COUNT: u64 = 1 << 60;
        if self.programs_explored > MAX_COUNT {
            return Err(format!(
                "programs_explored is {}, more than any search explores",
                self.programs_explored
            ));
        }
        for (k, i) in self.timeline.iter().enumerate() {
            seconds(format!("timeline[{k}].found_at_s"), i.found_at_s)?;
            if let Some(c) = i.model_cycles {
                if !(c.is_finite() && (0.0..1e9).contains(&c)) {
                    return Err(format!("timeline[{k}].model_cycles is {}", short(c)));
                }
            }
            if i.length > 1_000_000 {
                return Err(format!("timeline[{k}].length is {}", i.length));
            }
        }
        if let Some(st) = &self.stats {
            if st.expansions_by_depth.len() != st.children_by_depth.len() {
                return Err(format!(
                    "stats: {} depths of expansions but {} of children",
                    st.expansions_by_depth.len(),
                    st.children_by_depth.len()
                ));
            }
        }
        if let Some(t) = &self.tree {
            let n = t.nodes.len();
            if n == 0 {
                return Err("tree has no nodes (not even the initial state)".into());
            }
            let mut is_child = vec![false; n];
            for (i, node) in t.nodes.iter().enumerate() {
                if (i == 0) != node.action.is_none() {
                    return Err(if i == 0 {
                        "tree node 0 (the initial state) has a move".into()
                    } else {
                        format!("tree node {i} has no move")
                    });
                }
                for &c in &node.children {
                    let c = c as usize;
                    if c >= n {
                        return Err(format!(
                            "tree node {i} names child {c}, which does not exist"
                        ));
                    }
                    if c <= i || is_child[c] {
                        return Err(format!("tree node {i} names child {c} out of order"));
                    }
                    is_child[c] = true;
                }
            }
            if let Some(i) = (1..n).find(|&i| !is_child[i]) {
                return Err(format!("tree node {i} is nobody's child"));
            }
        }
        Ok(())
    }
}

/// The files [`logs_of`] reads for task `task` under `dir`: the regular `.json` files of
/// `<dir>/<task>/`, then of `<dir>/examples/`, each folder in name order (whatever task
/// their logs are of).
pub fn log_files(task: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in [dir.join(task), dir.join("examples")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        // Regular files only: reading a FIFO would wait forever.
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        paths.sort();
        out.extend(paths);
    }
    out
}

/// The search logs of task `task` under `dir`, as `bench` and `export --library` read them:
/// the files of [`log_files`] whose `task` is `task`. Logs that cannot be read are skipped
/// with a warning on stderr.
pub fn logs_of(task: &str, dir: &Path) -> Vec<(PathBuf, SearchLog)> {
    let mut out = Vec::new();
    for p in log_files(task, dir) {
        match SearchLog::read(&p) {
            Ok(log) if log.task == task => out.push((p, log)),
            Ok(_) => {}
            Err(e) => eprintln!("warning: skipping {e}"),
        }
    }
    out
}

/// `x` as a short number: as is when small, else in exponent form (`1e308`).
fn short(x: f64) -> String {
    if x.abs() < 1e9 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// Writes `path` atomically: `write` fills a temporary file in the same folder (created if
/// needed), which is synced, renamed over `path` and given mode 0644. A crash leaves either the
/// old file or the new one, never a truncated one.
///
/// Errors: [`Error::Io`] naming the folder or the path (also when `path` exists and is not a
/// regular file: a device, a folder, a symbolic link, which a rename would replace), or
/// whatever `write` returns.
pub(crate) fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    writable_target(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    write(tmp.path())?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    readable(path)
}

/// Checks that `path` is absent or a regular file, so that writing it atomically (a rename
/// over it) replaces nothing else. Errors: [`Error::Io`] naming the path.
pub(crate) fn writable_target(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(Error::io(
            path,
            std::io::Error::other("not a regular file; refusing to replace it"),
        )),
        _ => Ok(()),
    }
}

/// The first 4 KiB of `path` when it is a regular file, read without following a symlink and
/// without blocking (so that a link or FIFO swapped in after earlier checks is neither
/// followed nor waited on); `None` for anything else or when it cannot be read. Used to
/// recognise files superopt wrote before replacing them.
pub(crate) fn read_head(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut head = Vec::new();
    file.take(4096).read_to_end(&mut head).ok()?;
    Some(head)
}

/// Checks an output file named on the command line (`--csv`, `--png`, `--dot`, `--plot`):
/// it is not a `.json` file, so that no search log can be overwritten by a report (logs are
/// `.json`), and [`check_writable`] holds. `flag` names the option in the message.
///
/// Errors: [`Error::Runtime`] (`--csv x.json: refusing to write over a .json file (search
/// logs are .json); name it otherwise`) or as [`check_writable`].
pub(crate) fn check_output(flag: &str, path: &Path) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Err(Error::Runtime(format!(
            "{flag} {}: refusing to write over a .json file (search logs are .json); name it otherwise",
            path.display()
        )));
    }
    check_writable(path)
}

/// Reads a text file named by the user (a task, a kernel), refusing what is not a regular
/// file: reading a FIFO would wait forever.
///
/// Errors: [`Error::Io`] naming the path.
pub(crate) fn read_regular(path: &Path) -> Result<String> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Err(Error::io(path, std::io::Error::other("not a regular file")));
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Checks before long work that [`write_atomic_with`] will be able to write `path`: it is
/// absent or a regular file, and a temporary file can be made in its folder (created if
/// needed). Errors: [`Error::Io`] naming the path or folder.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    writable_target(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    Ok(())
}

/// Gives a file written through a temporary file (created 0600) the usual mode 0644.
pub(crate) fn readable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Whether `a` and `b` are the same file: the same device and inode (each taken both
/// through symlinks and of the link itself, so that a symlink or a hard link to the other
/// counts), the same canonical path, or, for paths that need not exist yet (outputs), the
/// same path once their folders are resolved (so `./x` and `x`, or an absolute and a
/// relative path, compare equal; paths whose folder does not exist compare by their text).
///
/// The one identity check of every command that refuses to write over its inputs (`export`,
/// `bench`) or over another of its outputs.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ids = |p: &Path| -> Vec<(u64, u64)> {
        [std::fs::metadata(p), std::fs::symlink_metadata(p)]
            .into_iter()
            .flatten()
            .map(|m| (m.dev(), m.ino()))
            .collect()
    };
    let resolved = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        dir.canonicalize()
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    let theirs = ids(b);
    a == b
        || ids(a).iter().any(|id| theirs.contains(id))
        || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        || resolved(a).is_some_and(|x| Some(x) == resolved(b))
}

/// An exclusive lock on a search log, held by the one process that writes it: a search
/// holds it from the moment its log exists until it ends, so that `--resume` of a log whose
/// search is still running (or a second `--resume`) is refused instead of the two
/// overwriting each other. It is an advisory `flock` on a hidden file beside the log
/// (`.<log name>.lock`), released by the kernel when the process dies (even by SIGKILL, so a
/// killed search can be resumed at once) and removed when the lock is dropped.
pub struct LogLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl LogLock {
    /// Takes the lock of `log`, without waiting.
    ///
    /// Errors: [`Error::Log`] naming the log when another process holds it
    /// (`another superopt process is writing this log; wait for it to end or stop it`);
    /// [`Error::Io`] when the lock file cannot be made.
    pub fn acquire(log: &Path) -> Result<LogLock> {
        use std::os::unix::io::AsRawFd;
        let dir = match log.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = log
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dir.join(format!(".{name}.lock"));
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // SAFETY: flock on a file descriptor this function owns (through `file`).
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Log {
                    path: log.into(),
                    message: "another superopt process is writing this log; wait for it to end or stop it".into(),
                }
            } else {
                Error::io(&path, e)
            });
        }
        Ok(LogLock { _file: file, path })
    }
}

impl Drop for LogLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_the_same_by_identity_or_by_resolved_path() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |f: &str| tmp.path().join(f);
        std::fs::write(p("a"), "a").unwrap();
        std::os::unix::fs::symlink(p("a"), p("link")).unwrap();
        std::fs::hard_link(p("a"), p("hard")).unwrap();
        std::fs::copy(p("a"), p("copy")).unwrap();
        std::fs::create_dir(p("sub")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), p("dirlink")).unwrap();
        // A hard link and a symlink are the same file, either way round; a copy is not.
        assert!(same_file(&p("hard"), &p("a")));
        assert!(same_file(&p("a"), &p("link")));
        assert!(same_file(&p("link"), &p("hard")));
        assert!(!same_file(&p("copy"), &p("a")));
        assert!(!same_file(&p("missing"), &p("a")));
        // Other spellings, through `..` and a symlinked folder.
        assert!(same_file(&p("sub/../a"), &p("a")));
        assert!(same_file(&p("dirlink/a"), &p("a")));
        // Outputs that do not exist yet: the same once their folders are resolved.
        assert!(same_file(&p("new"), &p("sub/../new")));
        assert!(same_file(&p("dirlink/new"), &p("new")));
        assert!(!same_file(&p("new"), &p("other")));
        assert!(same_file(Path::new("x"), Path::new("./x")));
    }
}
