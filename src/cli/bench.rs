//! `superopt bench <task> [FILES.s...] [--meter perf|tsc|model]`: times, in one process and
//! on the same random inputs, the best kernels superopt found (from the search logs), the
//! classic sorting-network kernel, compiled Rust baselines and any kernel files given, and
//! writes a table, a CSV and a PNG bar chart. Each subject is timed twice: its latency (calls
//! in a dependent chain, [`Chain::Dependent`]) and its reciprocal throughput (independent
//! back-to-back calls, [`Chain::Independent`]), side by side.

use crate::asm::{self, Syntax};
use crate::latency::{self, model, Chain, Measurement, MeterKind, Runner, SampleConfig};
use crate::oracle::{self, NativeConfig, Status};
use crate::task::Task;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// What to bench and how.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Kernel files to add (one instruction per line, as `superopt verify` reads them).
    pub files: Vec<PathBuf>,
    /// Their syntax.
    pub syntax: Syntax,
    /// The meter; `None` picks perf where hardware counters work, else tsc.
    pub meter: Option<MeterKind>,
    /// Sampling of the real meters.
    pub sampling: SampleConfig,
    /// Folder whose `<task>/*.json` and `examples/*.json` logs are searched for kernels.
    pub log_dir: PathBuf,
    /// Whole measurements to make, 1 or 2 (`--runs`, default 2): with 2, a row is called
    /// faster or slower than the reference only when its 95% interval lies below or above the
    /// reference's in both runs (issue 13); with 1, no call is made.
    pub runs: usize,
}

/// How a row compares with the reference row (the network) over the runs: [`Verdict`]'s
/// text is `faster`, `slower` or `tie`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Its 95% interval lies below the reference's in every run.
    Faster,
    /// Its 95% interval lies above the reference's in every run.
    Slower,
    /// Neither: the intervals overlap in some run, or the runs disagree.
    Tie,
}

impl Verdict {
    /// `faster`, `slower`, `tie`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::Tie => "tie",
        }
    }

    /// The verdict over paired runs of a subject and the reference (`(subject, reference)`
    /// per run); `None` with fewer than two runs or a run that did not measure both.
    pub fn of(runs: &[(Option<&Measurement>, Option<&Measurement>)]) -> Option<Verdict> {
        if runs.len() < 2 {
            return None;
        }
        let pairs: Vec<(&Measurement, &Measurement)> = runs
            .iter()
            .map(|&(a, b)| Some((a?, b?)))
            .collect::<Option<_>>()?;
        Some(if pairs.iter().all(|(a, b)| a.interval.1 < b.interval.0) {
            Verdict::Faster
        } else if pairs.iter().all(|(a, b)| a.interval.0 > b.interval.1) {
            Verdict::Slower
        } else {
            Verdict::Tie
        })
    }
}

/// One row of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// What was timed: `network (3 comparators)`, `superopt shortest`, a file name, ...
    pub subject: String,
    /// Where it came from (a log or file path, `rustc`, `built in`).
    pub source: String,
    /// Program length in instructions (`ret` excluded); `None` for compiled baselines.
    pub length: Option<usize>,
    /// The meter's figure; `None` where the meter cannot measure the subject (the model on
    /// compiled Rust).
    pub measurement: Option<Measurement>,
    /// The model's figure in cycles, for kernels.
    pub model_cycles: Option<f64>,
    /// `measurement.cycles` over the network row's (or, without a network, sort_unstable's).
    pub ratio: Option<f64>,
    /// The meter's figure for independent back-to-back calls (reciprocal throughput, the
    /// same unit per call); for the model meter, its port-pressure bound.
    pub throughput: Option<Measurement>,
    /// `throughput.cycles` over the reference row's, as [`Row::ratio`].
    pub throughput_ratio: Option<f64>,
    /// The second run's latency figure (with `runs` = 2).
    pub measurement_2: Option<Measurement>,
    /// The second run's throughput figure.
    pub throughput_2: Option<Measurement>,
    /// Latency against the reference row over both runs; `None` for the reference itself or
    /// with one run.
    pub latency_verdict: Option<Verdict>,
    /// Throughput against the reference row over both runs.
    pub throughput_verdict: Option<Verdict>,
    /// `verified`, `tested, not proven`, `FAILS: ...`, or `compiled` / `overhead`.
    pub status: String,
}

impl Row {
    /// A row before anything is measured: no figures, ratios or verdicts yet.
    fn unmeasured(subject: String, source: String, length: Option<usize>, status: String) -> Row {
        Row {
            subject,
            source,
            length,
            measurement: None,
            model_cycles: None,
            ratio: None,
            throughput: None,
            throughput_ratio: None,
            measurement_2: None,
            throughput_2: None,
            latency_verdict: None,
            throughput_verdict: None,
            status,
        }
    }
}

/// What `bench` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// The task's name.
    pub task: String,
    /// The meter used.
    pub meter: MeterKind,
    /// The meter's own description.
    pub meter_description: String,
    /// The model's table (the `model` column, and the figures of the model meter).
    pub uarch: crate::latency::model::Uarch,
    /// Why hardware counters were not used, when they were not.
    pub counters_unavailable: Option<String>,
    /// The rows, in the order measured.
    pub rows: Vec<Row>,
}

struct Subject {
    row: Row,
    runner: Runner,
}

/// Runs the bench. Errors: a task whose elements are not i32 (the compiled baselines are
/// i32 only), an unknown meter choice where it cannot run (`--meter perf` without counters), a kernel file that cannot be parsed or is not safe to run (with its
/// line), or bad sampling settings.
pub fn run_bench(task: &Task, opts: &BenchOptions) -> Result<BenchReport> {
    if task.element != crate::isa::Element::I32 {
        // The compiled baselines and the input arrays are i32 (latency::timing).
        return Err(Error::Runtime(format!(
            "bench times i32 tasks only; task {} sorts {} (time its kernels with `search --objective latency`)",
            task.name, task.element
        )));
    }
    let n = task.n;
    let (kind, counters_unavailable) = latency::resolve(opts.meter);
    let mut meter = latency::meter(kind, &opts.sampling)?;
    let mut subjects = Vec::new();
    let kernel_row = |subject: String, source: String, length, status: String| {
        Row::unmeasured(subject, source, Some(length), status)
    };
    let compiled_row = |subject: &str, status: &str| {
        Row::unmeasured(subject.into(), "rustc".into(), None, status.into())
    };
    subjects.push(Subject {
        row: kernel_row(
            "empty (chain overhead)".into(),
            "built in".into(),
            0,
            "overhead".into(),
        ),
        runner: Runner::empty(n)?,
    });
    subjects.push(Subject {
        row: compiled_row("empty function (call overhead)", "overhead"),
        runner: Runner::empty_call(n)?,
    });
    let comparators = crate::game::network::classic_comparators(n).map_or(0, |c| c.len());
    let mut networks = Vec::new();
    // The cmov network of a vector task runs on its twin's registers, with the callee-saved
    // ones after the caller-saved (sort8 needs a ninth register: the loop saves them).
    let twin = task.twin().with_all_callee_saved();
    if let Some(v) = task.vector {
        // A vector task: its own network of lane minima and maxima, and the cmov network beside
        // it, so that one run compares the two instruction sets.
        if let Some(prog) = crate::game::network::classic_kernel(task) {
            networks.push((
                if task.packed {
                    format!("network, {v} packed lanes ({comparators} comparators)")
                } else {
                    format!("network, {v} min/max ({comparators} comparators)")
                },
                prog,
                task,
            ));
        }
        if let Some(prog) = crate::game::network::classic_kernel(&twin) {
            networks.push((
                format!("network, cmov ({comparators} comparators)"),
                prog,
                &twin,
            ));
        }
    } else if let Some(prog) = crate::game::network::classic_kernel(task) {
        networks.push((format!("network ({comparators} comparators)"), prog, task));
    }
    // A logged kernel that is one of the networks is not shown twice.
    let network_programs: Vec<Vec<crate::isa::Insn>> =
        networks.iter().map(|(_, p, _)| p.clone()).collect();
    for (label, prog, owner) in networks {
        let body: Vec<iced_x86::Instruction> = prog.iter().map(|i| i.to_iced()).collect();
        let missing: Vec<String> = asm::lacking(crate::isa::features_as(&prog, task.element))
            .into_iter()
            .map(crate::isa::feature_name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Runtime(format!(
                "bench cannot time task {}'s network here: it needs {}, which this CPU lacks",
                task.name,
                missing.join(", ")
            )));
        }
        let status = with_saved_note("verified".into(), owner, &body);
        subjects.push(Subject {
            row: kernel_row(label, "built in".into(), prog.len(), status),
            runner: Runner::kernel(
                &crate::isa::encode(&prog),
                model::program_state_on(opts.sampling.uarch, &prog),
                n,
            )?,
        });
    }
    for (label, log_path, kernel) in logged_kernels(task, &opts.log_dir)? {
        if kernel
            .to_game_as(n, task.element)
            .is_ok_and(|p| network_programs.contains(&p))
        {
            continue;
        }
        subjects.push(Subject {
            row: kernel_row(
                label,
                log_path.display().to_string(),
                kernel.decoded.len(),
                with_saved_note("verified".into(), task, &kernel.decoded),
            ),
            runner: Runner::kernel(
                &kernel.code,
                model::decoded_state_on(opts.sampling.uarch, &kernel.decoded),
                n,
            )?,
        });
    }
    subjects.push(Subject {
        row: compiled_row("rust sort_unstable", "compiled"),
        runner: Runner::sort_unstable(n)?,
    });
    if let Some(r) = Runner::minmax_network(n) {
        subjects.push(Subject {
            row: compiled_row("rust min/max network", "compiled"),
            runner: r?,
        });
    }
    // Kernel files may use any callee-saved register: the timing loop saves them all, and
    // the oracle runs the body between pushes and pops of those it uses. Each file is checked
    // against the task's view for its register file (Task::bench_view: a cmov file beside a
    // vector task's kernels goes to the twin, a vector file may use any level and movdqa), so
    // that one run compares instruction sets.
    for file in &opts.files {
        let kernel = asm::parse_file(file, opts.syntax)?;
        let vector = kernel.decoded.iter().any(|i| {
            (0..i.op_count()).any(|k| {
                let r = i.op_register(k);
                i.op_kind(k) == iced_x86::OpKind::Register
                    && (r.is_xmm() || r.is_ymm() || r.is_zmm())
            })
        });
        let view = task.bench_view(vector);
        let task = &view;
        let missing = kernel.missing_features();
        if !missing.is_empty()
            && kernel
                .check_safe_aligned(n, task.element, task.align, &task.saved_registers(), false)
                .is_ok()
        {
            // Say whether the emulator proves it, then that it cannot run here.
            let verdict = oracle::verify_kernel(task, &kernel, &NativeConfig::default())?;
            let names: Vec<String> = missing.into_iter().map(crate::isa::feature_name).collect();
            let what = if verdict.status == Status::ProvedNotRun {
                "proved, not run"
            } else {
                "not run"
            };
            return Err(Error::Asm {
                path: file.display().to_string(),
                line: kernel.lines.first().copied().unwrap_or(1),
                message: format!(
                    "cannot be timed: {what}: needs {}, which this CPU lacks",
                    names.join(", ")
                ),
            });
        }
        if let Err((line, reason)) =
            kernel.check_safe_aligned(n, task.element, task.align, &task.saved_registers(), true)
        {
            return Err(Error::Asm {
                path: file.display().to_string(),
                line,
                message: format!("cannot be timed: {reason}"),
            });
        }
        let verdict = oracle::verify_kernel(
            task,
            &kernel,
            &NativeConfig {
                random: 10_000,
                ..NativeConfig::default()
            },
        )?;
        let status = match verdict.status {
            Status::Verified => "verified".to_string(),
            Status::TestedNotProven => "tested, not proven".to_string(),
            Status::ProvedNotRun | Status::Failed => {
                format!("FAILS: {}", verdict.reason.unwrap_or_default())
            }
        };
        let status = with_saved_note(status, task, &kernel.decoded);
        let name = file
            .file_name()
            .map_or(file.display().to_string(), |f| f.to_string_lossy().into());
        subjects.push(Subject {
            row: kernel_row(
                name,
                file.display().to_string(),
                kernel.decoded.len(),
                status,
            ),
            runner: Runner::kernel(
                &kernel.code,
                model::decoded_state_on(opts.sampling.uarch, &kernel.decoded),
                n,
            )?,
        });
    }

    let inputs = latency::Inputs {
        n,
        per_pass: opts.sampling.inputs,
        seed: opts.sampling.seed,
    };
    let runners: Vec<&Runner> = subjects.iter().map(|s| &s.runner).collect();
    // The same subjects in the independent loop, measured the same way after them.
    let twins = subjects
        .iter()
        .map(|s| s.runner.independent())
        .collect::<Result<Vec<Runner>>>()?;
    debug_assert!(twins.iter().all(|t| t.chain() == Chain::Independent));
    let twin_refs: Vec<&Runner> = twins.iter().collect();
    // Whole runs, one after the other: latency then throughput each time.
    let mut runs = Vec::new();
    // The model is deterministic: one run, and its verdicts compare its figures.
    let model_meter = meter.kind() == MeterKind::Model;
    let n_runs = if model_meter {
        1
    } else {
        opts.runs.clamp(1, 2)
    };
    for _ in 0..n_runs {
        let measured = latency::measure_all(meter.as_mut(), &runners, &inputs, &opts.sampling)?;
        let throughput = latency::measure_all(meter.as_mut(), &twin_refs, &inputs, &opts.sampling)?;
        runs.push((measured, throughput));
    }
    let mut runs = runs.into_iter();
    let (measured, throughput) = runs.next().expect("at least one run");
    let second = runs.next();
    let mut rows = Vec::new();
    for (i, ((s, m), t)) in subjects.iter().zip(measured).zip(throughput).enumerate() {
        let mut row = s.row.clone();
        row.measurement = m;
        row.throughput = t;
        if let Some((m2, t2)) = &second {
            row.measurement_2 = m2[i].clone();
            row.throughput_2 = t2[i].clone();
        }
        row.model_cycles = s
            .runner
            .model()
            .map(|m| m.cycles())
            .filter(|_| row.length.is_some_and(|l| l > 0));
        rows.push(row);
    }
    let reference = rows
        .iter()
        .find(|r| r.subject.starts_with("network"))
        .or_else(|| rows.iter().find(|r| r.subject == "rust sort_unstable"));
    let base = reference.and_then(|r| r.measurement.as_ref().map(|m| m.cycles));
    let base_t = reference.and_then(|r| r.throughput.as_ref().map(|m| m.cycles));
    let ratio = |m: &Option<Measurement>, b: Option<f64>| match (m, b) {
        (Some(m), Some(b)) if b > 0.0 => Some(m.cycles / b),
        _ => None,
    };
    let reference = reference.cloned();
    for r in &mut rows {
        r.ratio = ratio(&r.measurement, base);
        r.throughput_ratio = ratio(&r.throughput, base_t);
        // The overhead rows are part of every figure, not contenders; a kernel that fails
        // the checks is timed (to show what it would cost) but never called faster.
        if let Some(b) = reference.as_ref().filter(|b| {
            b.subject != r.subject && r.status != "overhead" && !r.status.starts_with("FAILS")
        }) {
            if model_meter {
                // Zero-width intervals: the rule compares the figures.
                let one = |a: Option<&Measurement>, b: Option<&Measurement>| {
                    Verdict::of(&[(a, b), (a, b)])
                };
                r.latency_verdict = one(r.measurement.as_ref(), b.measurement.as_ref());
                r.throughput_verdict = one(r.throughput.as_ref(), b.throughput.as_ref());
                continue;
            }
            r.latency_verdict = Verdict::of(&[
                (r.measurement.as_ref(), b.measurement.as_ref()),
                (r.measurement_2.as_ref(), b.measurement_2.as_ref()),
            ])
            .filter(|_| r.measurement_2.is_some());
            r.throughput_verdict = Verdict::of(&[
                (r.throughput.as_ref(), b.throughput.as_ref()),
                (r.throughput_2.as_ref(), b.throughput_2.as_ref()),
            ])
            .filter(|_| r.throughput_2.is_some());
        }
    }
    Ok(BenchReport {
        task: task.name.clone(),
        meter: meter.kind(),
        meter_description: meter.describe(),
        uarch: opts.sampling.uarch,
        counters_unavailable,
        rows,
    })
}

/// The verified kernels of `task` in the logs under `dir` (`<dir>/<task>/*.json` and
/// `<dir>/examples/*.json`), each at most once: `superopt latency search` (the kernel of the
/// most recent `--objective latency` log, chosen there by a real meter; logs whose search kept
/// the classic network are skipped), `superopt shortest`
/// (ties: lowest model latency) and `superopt lowest model latency` (ties: shortest).
/// Unreadable logs are skipped with a warning on stderr.
fn logged_kernels(task: &Task, dir: &Path) -> Result<Vec<(String, PathBuf, asm::Kernel)>> {
    // (path, started, from a latency search, AT&T lines)
    let mut found: Vec<(PathBuf, String, bool, Vec<String>)> = Vec::new();
    if ![dir.join(&task.name), dir.join("examples")]
        .iter()
        .any(|d| d.is_dir())
    {
        eprintln!(
            "warning: no search logs in {} (neither {}/ nor examples/ is a folder there)",
            dir.display(),
            task.name
        );
    }
    for (p, log) in crate::log::logs_of(&task.name, dir) {
        // A latency search whose kernel a real meter chose (the model's picks are not measured).
        let latency = log.measured_latency();
        // A latency search that kept the network: its own fastest kernel.
        let program = log.best.and_then(|k| match k.latency {
            Some(l) if l.baseline => l.runner_up.map(|r| r.program_att),
            _ => k.verified.then_some(k.program_att),
        });
        if let Some(att) = program {
            found.push((p, log.started, latency, att));
        }
    }
    struct Logged {
        path: PathBuf,
        started: String,
        latency: bool,
        ticks: u32,
        kernel: asm::Kernel,
    }
    let mut kernels: Vec<Logged> = Vec::new();
    for (path, started, latency, att) in found {
        let kernel = match asm::parse_str(&att.join("\n"), Syntax::Att, &path.display().to_string())
        {
            Ok(k) => k,
            Err(e) => {
                eprintln!("warning: skipping {e}");
                continue;
            }
        };
        let ticks = model::decoded_state(&kernel.decoded).ticks().0;
        kernels.push(Logged {
            path,
            started,
            latency,
            ticks,
            kernel,
        });
    }
    // Each label's candidates in order of preference; the first that passes the checks wins,
    // so a rejected log does not hide the next best.
    let mut latest: Vec<&Logged> = kernels.iter().filter(|k| k.latency).collect();
    latest.sort_by(|a, b| b.started.cmp(&a.started));
    let mut shortest: Vec<&Logged> = kernels.iter().collect();
    shortest.sort_by_key(|k| (k.kernel.decoded.len(), k.ticks));
    let mut fastest: Vec<&Logged> = kernels.iter().collect();
    fastest.sort_by_key(|k| (k.ticks, k.kernel.decoded.len()));
    let picks = [
        ("superopt latency search", latest),
        ("superopt shortest", shortest),
        ("superopt lowest model latency", fastest),
    ];
    let mut out: Vec<(String, PathBuf, asm::Kernel)> = Vec::new();
    let mut rejected: Vec<&[u8]> = Vec::new();
    for (label, candidates) in picks {
        for k in candidates {
            if rejected.contains(&&k.kernel.code[..]) {
                continue;
            }
            if out.iter().any(|o| o.2.code == k.kernel.code) {
                break; // already shown under an earlier label
            }
            // A log is only text: check the kernel as `verify` would before running it (a
            // log of another task of the same name, or an edited one).
            if let Err(why) = logged_kernel_ok(task, &k.kernel) {
                eprintln!(
                    "warning: skipping the kernel of {}: {why}",
                    k.path.display()
                );
                rejected.push(&k.kernel.code);
                continue;
            }
            out.push((label.to_string(), k.path.clone(), k.kernel.clone()));
            break;
        }
    }
    Ok(out)
}

/// `status`, plus a note when the kernel's body uses callee-saved registers: the timing loop
/// saves them once around all its calls, so the body is timed as inline asm with clobbers
/// would run it, without the push and pop an exported function adds
/// (`verified; body timed, rbx saved outside`).
fn with_saved_note(status: String, task: &Task, body: &[iced_x86::Instruction]) -> String {
    let saved = oracle::callee_saved_used(body, &task.saved_registers());
    if saved.is_empty() {
        return status;
    }
    let names: Vec<String> = saved
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    format!("{status}; body timed, {} saved outside", names.join(" "))
}

/// Whether a kernel read from a log is safe to run and verified for `task`; else why not.
fn logged_kernel_ok(task: &Task, kernel: &asm::Kernel) -> std::result::Result<(), String> {
    kernel
        .check_safe_aligned(
            task.n,
            task.element,
            task.align,
            &task.saved_registers(),
            true,
        )
        .map_err(|(line, reason)| format!("line {line}: {reason}"))?;
    let cfg = NativeConfig {
        random: 10_000,
        ..NativeConfig::default()
    };
    let verdict = oracle::verify_kernel(task, kernel, &cfg).map_err(|e| e.to_string())?;
    match verdict.status {
        Status::Verified => Ok(()),
        _ => Err(verdict.reason.unwrap_or_else(|| "not verified".into())),
    }
}

/// The table, one line per row, with a header naming the meter: the latency figure (dependent
/// calls) with its interval, its ns and ratio, then the throughput figure (independent calls)
/// and its ratio, the model's latency, and the status.
pub fn format_report(r: &BenchReport) -> String {
    let mut s = String::new();
    if let Some(why) = &r.counters_unavailable {
        s.push_str(&format!("{why}; using the {} meter\n", r.meter.name()));
    }
    // The model meter's description names its table; for the others, the model column's.
    let table = if r.meter == MeterKind::Model {
        String::new()
    } else {
        format!("; model column: {} table", r.uarch.name())
    };
    s.push_str(&format!(
        "{}: meter {}{table}\n",
        r.task, r.meter_description
    ));
    let unit = r.meter.unit();
    let figure = |m: Option<&Measurement>| {
        m.map_or("-".to_string(), |m| {
            if m.samples == 0 {
                format!("{:.2}", m.cycles)
            } else {
                format!("{:.2} [{:.2}, {:.2}]", m.cycles, m.interval.0, m.interval.1)
            }
        })
    };
    let ratio = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
    let verdict = |v: Option<Verdict>| v.map_or("-", |v| v.name());
    s.push_str(&format!(
        "{:<40} {:>6} {:>28} {:>8} {:>8} {:>7} {:>28} {:>8} {:>7} {:>7}  {}\n",
        "subject",
        "instrs",
        if r.meter == MeterKind::Model {
            format!("{unit}/call")
        } else {
            format!("{unit}/call [95% CI]")
        },
        "ns/call",
        "ratio",
        "vs ref",
        if r.meter == MeterKind::Model {
            "throughput"
        } else {
            "throughput [95% CI]"
        },
        "t-ratio",
        "vs ref",
        "model",
        "status"
    ));
    for row in &r.rows {
        let m = row.measurement.as_ref();
        s.push_str(&format!(
            "{:<40} {:>6} {:>28} {:>8} {:>8} {:>7} {:>28} {:>8} {:>7} {:>7}  {}\n",
            row.subject,
            row.length.map_or("-".into(), |l| l.to_string()),
            figure(m),
            m.and_then(|m| m.ns)
                .map_or("-".into(), |ns| format!("{ns:.2}")),
            ratio(row.ratio),
            verdict(row.latency_verdict),
            figure(row.throughput.as_ref()),
            ratio(row.throughput_ratio),
            verdict(row.throughput_verdict),
            row.model_cycles.map_or("-".into(), |c| format!("{c:.2}")),
            row.status
        ));
    }
    if r.meter == MeterKind::Model {
        s.push_str("vs ref: faster (slower) when the model's figure is below (above) the reference's, else tie\n");
    } else if r.rows.iter().any(|row| row.measurement_2.is_some()) {
        s.push_str("figures: run 1 of 2; vs ref: faster (slower) when the 95% interval lies below (above) the reference's in both runs, else tie; both runs are in the CSV\n");
    }
    s
}

/// The header line of the CSV that [`write_csv`] writes. It is also bench's mark on the file
/// (CSV has no comments): an existing `--csv` target is replaced only when its first line is
/// this ([`check_outputs`]). Keep it stable: files written by earlier versions carry it.
pub const CSV_HEADER: &str =
    "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status,throughput,throughput_low,throughput_high,throughput_ratio,cycles_2,low_2,high_2,throughput_2,throughput_low_2,throughput_high_2,latency_verdict,throughput_verdict";

/// The header lines of CSVs that earlier versions of bench wrote: such a file is bench's too
/// and may be replaced ([`check_outputs`]).
const EARLIER_CSV_HEADERS: [&str; 2] = [
    "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status",
    "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status,throughput,throughput_low,throughput_high,throughput_ratio",
];

/// The first bytes of every PNG file.
const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// A file bench reads, which none of its outputs may be: what it is (`the kernel file`,
/// `the task file`, `the search log`) and its path.
pub type Input = (&'static str, PathBuf);

/// The files `superopt bench` reads for `task` (given on the command line as `task_arg`),
/// kernel `files` and log folder `log_dir`: the kernel files, the task file (not for a
/// built-in task), and every file [`crate::log::log_files`] lists.
pub fn inputs(task: &Task, task_arg: &str, files: &[PathBuf], log_dir: &Path) -> Vec<Input> {
    let mut inputs: Vec<Input> = files
        .iter()
        .map(|f| ("the kernel file", f.clone()))
        .collect();
    if task.file().is_some() {
        inputs.push(("the task file", PathBuf::from(task_arg)));
    }
    inputs.extend(
        crate::log::log_files(&task.name, log_dir)
            .into_iter()
            .map(|p| ("the search log", p)),
    );
    inputs
}

/// Checks, before anything is timed, that bench may write its outputs `csv` and `png`:
/// neither is one of `inputs` (the same file by device and inode, through symlinks and hard
/// links, or by canonical path: `crate::log::same_file`), the chart is named `.png`, both
/// pass `crate::log::check_output` (not `.json`, absent or a regular file, their folder
/// writable), they are not the same file, and a file that exists already is one bench
/// wrote: a CSV whose first line is [`CSV_HEADER`], a PNG image (PNG has no room for a
/// marker a reader would keep, so any PNG is taken as a chart).
///
/// Errors: [`Error::Runtime`], one line: `--csv k.s is the kernel file k.s; bench never
/// writes over its inputs (name the output otherwise)`, `--csv notes.csv exists and was not
/// written by superopt bench (its first line is not bench's CSV header); refusing to replace
/// it (move it away or name another file)`, `--png x.png exists and is not a PNG image;
/// refusing to replace it (move it away or name another file)`, `--csv and --png name the
/// same file: x`; or those of the checks named.
pub fn check_outputs(csv: &Path, png: &Path, inputs: &[Input]) -> Result<()> {
    for (flag, out) in [("--csv", csv), ("--png", png)] {
        if let Some((what, input)) = inputs.iter().find(|(_, i)| crate::log::same_file(out, i)) {
            return Err(Error::Runtime(format!(
                "{flag} {} is {what} {}; bench never writes over its inputs (name the output otherwise)",
                out.display(),
                input.display()
            )));
        }
    }
    crate::log::check_output("--csv", csv)?;
    crate::plot::check_png_name("--png", png)?;
    crate::log::check_output("--png", png)?;
    // Compared once their folders exist, so that `./x` and `x` are one file.
    if crate::log::same_file(csv, png) {
        return Err(Error::Runtime(format!(
            "--csv and --png name the same file: {}",
            csv.display()
        )));
    }
    let first_bytes = crate::log::read_head;
    if std::fs::symlink_metadata(csv).is_ok() {
        let head = first_bytes(csv).unwrap_or_default();
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        if first != CSV_HEADER.as_bytes()
            && !EARLIER_CSV_HEADERS.iter().any(|h| first == h.as_bytes())
        {
            return Err(Error::Runtime(format!(
                "--csv {} exists and was not written by superopt bench (its first line is not bench's CSV header); refusing to replace it (move it away or name another file)",
                csv.display()
            )));
        }
    }
    if std::fs::symlink_metadata(png).is_ok()
        && !first_bytes(png).is_some_and(|h| h.starts_with(PNG_SIGNATURE))
    {
        return Err(Error::Runtime(format!(
            "--png {} exists and is not a PNG image; refusing to replace it (move it away or name another file)",
            png.display()
        )));
    }
    Ok(())
}

/// Writes the rows as CSV (first line: [`CSV_HEADER`]), atomically.
pub fn write_csv(r: &BenchReport, path: &Path) -> Result<()> {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
    let mut out = format!("{CSV_HEADER}\n");
    for row in &r.rows {
        let m = row.measurement.as_ref();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            q(&r.task),
            q(r.meter.name()),
            q(r.meter.unit()),
            q(&row.subject),
            q(&row.source),
            row.length.map_or(String::new(), |l| l.to_string()),
            f(m.map(|m| m.cycles)),
            f(m.map(|m| m.interval.0)),
            f(m.map(|m| m.interval.1)),
            f(m.and_then(|m| m.ns)),
            f(row.ratio),
            f(row.model_cycles),
            q(&row.status),
            f(row.throughput.as_ref().map(|m| m.cycles)),
            f(row.throughput.as_ref().map(|m| m.interval.0)),
            f(row.throughput.as_ref().map(|m| m.interval.1)),
            f(row.throughput_ratio),
            f(row.measurement_2.as_ref().map(|m| m.cycles)),
            f(row.measurement_2.as_ref().map(|m| m.interval.0)),
            f(row.measurement_2.as_ref().map(|m| m.interval.1)),
            f(row.throughput_2.as_ref().map(|m| m.cycles)),
            f(row.throughput_2.as_ref().map(|m| m.interval.0)),
            f(row.throughput_2.as_ref().map(|m| m.interval.1)),
            row.latency_verdict.map_or(String::new(), |v| q(v.name())),
            row.throughput_verdict
                .map_or(String::new(), |v| q(v.name())),
        ));
    }
    crate::log::write_atomic_with(path, |tmp| {
        std::fs::write(tmp, &out).map_err(|e| Error::io(path, e))
    })
}

/// Draws the rows with a figure as a bar chart (whiskers: the intervals).
pub fn write_png(r: &BenchReport, path: &Path) -> Result<()> {
    let bars: Vec<crate::plot::Bar> = r
        .rows
        .iter()
        .filter_map(|row| {
            let m = row.measurement.as_ref()?;
            Some(crate::plot::Bar {
                label: row.subject.clone(),
                value: m.cycles,
                interval: (m.samples > 0).then_some(m.interval),
                group: match row.status.as_str() {
                    "overhead" => 0,
                    _ if row.subject.starts_with("network") => 1,
                    _ if row.subject.starts_with("superopt") => 2,
                    "compiled" => 3,
                    _ => 4,
                },
            })
        })
        .collect();
    crate::plot::bar_chart(
        path,
        &format!(
            "{}: {} per call ({} meter{})",
            r.task,
            r.meter.unit(),
            r.meter.name(),
            if r.meter == MeterKind::Model {
                format!(", {}", r.uarch.name())
            } else {
                String::new()
            }
        ),
        &format!("{} per call", r.meter.unit()),
        &bars,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(low: f64, high: f64) -> Measurement {
        Measurement {
            meter: MeterKind::Tsc,
            cycles: (low + high) / 2.0,
            interval: (low, high),
            ns: None,
            samples: 100,
        }
    }

    #[test]
    fn a_kernel_is_faster_only_when_its_interval_lies_below_in_both_runs() {
        let net = m(17.0, 17.5);
        let (below, above, overlap) = (m(16.0, 16.9), m(17.6, 18.0), m(16.8, 17.2));
        let v = |a: &Measurement, b: &Measurement| {
            Verdict::of(&[(Some(a), Some(&net)), (Some(b), Some(&net))])
        };
        assert_eq!(v(&below, &below), Some(Verdict::Faster));
        assert_eq!(v(&above, &above), Some(Verdict::Slower));
        // One run below, the other overlapping or above: not called faster.
        assert_eq!(v(&below, &overlap), Some(Verdict::Tie));
        assert_eq!(v(&below, &above), Some(Verdict::Tie));
        // One run makes no call; a run that did not measure both neither.
        assert_eq!(Verdict::of(&[(Some(&below), Some(&net))]), None);
        assert_eq!(
            Verdict::of(&[(Some(&below), Some(&net)), (None, Some(&net))]),
            None
        );
    }
}
