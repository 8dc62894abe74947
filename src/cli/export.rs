//! `superopt export`: reads a kernel from a search log or an assembly file (or, with
//! `--library`, the shortest verified kernel per task from the logs, or with `--objective
//! latency` the latest latency search's) and hands it to
//! [`crate::export`].

use crate::asm::{self, Syntax};
use crate::error::{Error, Result};
use crate::export::{self, Format, LibraryKernel, Written};
use crate::game::Objective;
use crate::log::SearchLog;
use crate::oracle::NativeConfig;
use crate::task::Task;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The options of `superopt export` after clap.
#[derive(Debug)]
pub struct ExportArgs {
    /// The input file, or with `library` the tasks.
    pub inputs: Vec<String>,
    /// Output format of a single export.
    pub format: Format,
    /// Function name (default: the task's name with `-` as `_`).
    pub name: Option<String>,
    /// Output folder of a single export.
    pub out_dir: PathBuf,
    /// Task of an assembly input, or the expected task of a log.
    pub task: Option<String>,
    /// Syntax of an assembly input: `att` or `intel` (`None`: att); refused for a log.
    pub syntax: Option<String>,
    /// `--library DIR`.
    pub library: Option<PathBuf>,
    /// Where `--library` looks for logs.
    pub log_dir: PathBuf,
    /// Which kernel `--library` takes per task: the shortest (default) or the latest latency
    /// search's.
    pub objective: Objective,
    /// `--crate-name`.
    pub crate_name: Option<String>,
    /// Replace existing files that an earlier export wrote (and write a library into a
    /// non-empty folder).
    pub overwrite: bool,
}

/// Runs `superopt export`; prints one line per file written with its check.
///
/// Errors: see [`crate::export::export`]; [`Error::Runtime`], [`Error::Log`] or
/// [`Error::Asm`] for bad input.
pub fn run(args: ExportArgs, w: &mut dyn Write) -> Result<()> {
    let cfg = NativeConfig::default();
    let syntax: Syntax = args
        .syntax
        .as_deref()
        .unwrap_or("att")
        .parse()
        .map_err(Error::Runtime)?;
    let is_log = |p: &str| Path::new(p).extension().is_some_and(|e| e == "json");
    if args.syntax.is_some() && args.inputs.iter().any(|i| is_log(i)) {
        return Err(Error::Runtime(
            "--syntax is for an assembly-file INPUT; a search log's kernel is read as logged (choose the output's syntax with --format gas or intel)".into(),
        ));
    }
    for dir in args.library.iter().chain(std::iter::once(&args.out_dir)) {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Runtime(format!("{}: not a folder", dir.display())));
        }
    }
    let written = match &args.library {
        Some(dir) => {
            let crate_name = match &args.crate_name {
                Some(c) => {
                    export::check_crate_name(c)?;
                    c.clone()
                }
                None => export::crate_name_for(dir)?,
            };
            let mut kernels: Vec<LibraryKernel> = Vec::new();
            let mut inputs: Vec<PathBuf> = Vec::new();
            for t in &args.inputs {
                let task = Task::load(t)?;
                inputs.extend(task.file());
                // Before the logs are searched: a bad name is the first thing to fix.
                export::check_library_name(&task.function_name())?;
                let (path, kernel) = best_logged(&task, &args.log_dir, args.objective, &cfg)?;
                inputs.push(path.clone());
                let how = match args.objective {
                    Objective::Length => "",
                    Objective::Latency => " (latency search)",
                };
                kernels.push((task, kernel, format!("search log {}{how}", path.display())));
            }
            export::export_library(dir, &crate_name, &kernels, args.overwrite, &inputs, &cfg)?
        }
        None => {
            if args.inputs.len() != 1 {
                return Err(Error::Runtime(format!(
                    "export takes one INPUT (a search log or an assembly file), not {}; to export several tasks use --library DIR",
                    args.inputs.len()
                )));
            }
            let input = Path::new(&args.inputs[0]);
            let (task, kernel, provenance) = read_input(input, args.task.as_deref(), syntax)?;
            let name = args.name.clone().unwrap_or_else(|| task.function_name());
            let inputs: Vec<PathBuf> = std::iter::once(input.to_path_buf())
                .chain(task.file())
                .collect();
            export::export(
                &task,
                &kernel,
                &export::Target {
                    format: args.format,
                    name: &name,
                    dir: &args.out_dir,
                    overwrite: args.overwrite,
                    inputs: &inputs,
                },
                &provenance,
                &cfg,
            )?
        }
    };
    print_written(w, &written)
}

fn print_written(w: &mut dyn Write, written: &[Written]) -> Result<()> {
    for f in written {
        writeln!(w, "wrote {}: {}", f.path.display(), f.check)
            .map_err(|e| Error::io("stdout", e))?;
    }
    Ok(())
}

/// The task, kernel and provenance of a single export's INPUT.
fn read_input(
    input: &Path,
    task: Option<&str>,
    syntax: Syntax,
) -> Result<(Task, asm::Kernel, String)> {
    let ext = input
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => {
            let log = SearchLog::read(input)?;
            let log_task = super::search::log_task(&log, input).map_err(|e| Error::Log {
                path: input.into(),
                message: e.to_string(),
            })?;
            if let Some(t) = task {
                let given = Task::load(t)?;
                if given.name != log_task.name {
                    return Err(Error::Runtime(format!(
                        "--task {} does not match the log's task {}",
                        given.name, log_task.name
                    )));
                }
                // Same name, another spec: the log's kernel was verified for the log's task.
                if (given.n, given.element, &given.scratch, &given.conds)
                    != (
                        log_task.n,
                        log_task.element,
                        &log_task.scratch,
                        &log_task.conds,
                    )
                {
                    return Err(Error::Runtime(format!(
                        "--task {t} differs from the log's task {} (n, element type, scratch registers or opcodes); export the log without --task, or the kernel as a .s file with --task",
                        log_task.name
                    )));
                }
            }
            let best = log.best.ok_or_else(|| Error::Log {
                path: input.into(),
                message: "the log has no kernel (its search found none)".into(),
            })?;
            if !best.verified && best.not_run.is_none() {
                return Err(Error::NotVerified(format!(
                    "not verified: {} records its kernel as not verified; export writes only verified kernels",
                    input.display()
                )));
            }
            let kernel = asm::parse_str(
                &best.program_att.join("\n"),
                Syntax::Att,
                &input.display().to_string(),
            )?;
            Ok((log_task, kernel, format!("search log {}", input.display())))
        }
        "s" | "S" | "asm" => {
            let Some(t) = task else {
                return Err(Error::Runtime(format!(
                    "{}: an assembly file needs --task (e.g. --task sort3)",
                    input.display()
                )));
            };
            let task = Task::load(t)?;
            let kernel = asm::parse_file(input, syntax)?;
            Ok((task, kernel, format!("file {}", input.display())))
        }
        _ => Err(Error::Runtime(format!(
            "{}: expected a search log (.json) or an assembly file (.s, .S, .asm)",
            input.display()
        ))),
    }
}

/// The shortest verified kernel for `task` in the logs under `dir` (`<dir>/<task>/*.json`
/// and `<dir>/examples/*.json`, as `bench` reads them); ties go to the earliest `started`.
/// Each candidate is verified again; unreadable logs and kernels that fail are skipped with
/// a warning naming the log, so that one bad log does not hide the next best.
///
/// Errors: [`Error::Runtime`] naming the task and the folders when there is none.
///
/// With [`Objective::Latency`] (`export --library --objective latency`), the kernel of the most
/// recent `--objective latency` search whose kernel a real meter picked (not `--meter model`;
/// the classic network included), as bench's `superopt latency search` row; errors then name
/// the objective.
fn best_logged(
    task: &Task,
    dir: &Path,
    objective: Objective,
    cfg: &NativeConfig,
) -> Result<(PathBuf, asm::Kernel)> {
    let subs = [dir.join(&task.name), dir.join("examples")];
    // (length, started, path, AT&T lines)
    let mut candidates: Vec<(usize, String, PathBuf, Vec<String>)> = Vec::new();
    for (p, log) in crate::log::logs_of(&task.name, dir) {
        if objective == Objective::Latency && !log.measured_latency() {
            continue;
        }
        if let Some(k) = log.best.filter(|k| k.verified || k.not_run.is_some()) {
            candidates.push((k.length, log.started, p, k.program_att));
        }
    }
    match objective {
        Objective::Length => candidates.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1))),
        // The most recent first.
        Objective::Latency => candidates.sort_by(|a, b| b.1.cmp(&a.1)),
    }
    for (_, _, path, att) in candidates {
        let checked = asm::parse_str(&att.join("\n"), Syntax::Att, &path.display().to_string())
            .and_then(|k| export::require_verified(task, &k, cfg).map(|_| k));
        match checked {
            Ok(kernel) => return Ok((path, kernel)),
            Err(e) => eprintln!("warning: skipping the kernel of {}: {e}", path.display()),
        }
    }
    let what = match objective {
        Objective::Length => String::new(),
        Objective::Latency => " from a latency search".into(),
    };
    Err(Error::Runtime(format!(
        "no verified {} kernel{what} in the search logs under {} (looked in {}/ and {}/)",
        task.name,
        dir.display(),
        subs[0].display(),
        subs[1].display()
    )))
}
