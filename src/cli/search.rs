//! `superopt search`: runs the search on a task, verifies the best kernel with the full
//! oracle, prints it and writes the search log.

use crate::game::{Objective, SortGame};
use crate::log::{Improvement, LoggedKernel, LoggedLatency, SearchLog, LOG_VERSION};
use crate::oracle::{self, NativeConfig, Status};
use crate::search::{
    astar, mcts, Budget, Environment, HeuristicEvaluator, MctsConfig, Shared, StopReason,
    UniformEvaluator,
};
use crate::task::Task;
use crate::Result;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most worker threads a search may start (root parallelism gains nothing from thousands).
pub const MAX_THREADS: usize = 256;

/// Which search strategy to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Monte-Carlo tree search with PUCT, played in episodes (AlphaDev's search).
    Mcts,
    /// Anytime weighted A* over the same game and heuristics.
    Astar,
}

/// Where MCTS gets its priors and leaf values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluatorKind {
    /// Priors from a one-step look-ahead of the game's estimate; values from the estimate.
    Heuristic,
    /// Uniform priors; values from the estimate (the no-guidance baseline).
    Uniform,
}

/// What guides MCTS, resolved from `--evaluator` and `--net` by [`resolve_guide`].
#[derive(Clone, Debug, PartialEq)]
pub enum Guide {
    /// The game's one-step look-ahead priors and estimate values.
    Heuristic,
    /// Uniform priors, estimate values (`--net none`).
    Uniform,
    /// A policy/value network checkpoint.
    Net {
        /// `nets/NAME.safetensors` (with `nets/NAME.json` beside it).
        path: PathBuf,
        /// Where leaf values come from.
        value: crate::net::ValueSource,
        /// Whether it was found in nets/ rather than named with `--net`.
        shipped: bool,
    },
}

impl Guide {
    /// How the guide is named in outputs and logs: `heuristic`, `uniform`,
    /// `net nets/sort3.safetensors (shipped)`.
    pub fn describe(&self) -> String {
        match self {
            Guide::Heuristic => "heuristic".into(),
            Guide::Uniform => "uniform".into(),
            Guide::Net {
                path,
                value,
                shipped,
            } => format!(
                "net {}{}{}",
                path.display(),
                if *shipped { " (shipped)" } else { "" },
                if *value == crate::net::ValueSource::Net {
                    ", net values"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Folders searched for a shipped net: `./nets`, then the `nets/` of the source tree this
/// binary was built from.
pub fn shipped_net_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("nets"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets"),
    ]
}

/// The shipped net for `task`: `nets/<task>.safetensors` with its `.json`, when one exists
/// in [`shipped_net_dirs`] and can serve the task.
pub fn shipped_net(task: &Task) -> Option<PathBuf> {
    let game = SortGame::new(task);
    shipped_net_dirs().into_iter().find_map(|d| {
        let stem = d.join(&task.name);
        let weights = crate::net::with_suffix(&stem, "safetensors");
        (weights.is_file() && crate::net::PolicyValueNet::load_for(&game, &stem).is_ok())
            .then_some(weights)
    })
}

/// Resolves the command line's choice: `--net none` is uniform priors, `--net PATH` that
/// net, `--evaluator` as named, and neither the shipped net for the task or, without one,
/// the heuristic. Under [`Objective::Latency`] the default is the heuristic: the shipped nets
/// learned to shorten programs, not to speed them up.
pub fn resolve_guide(
    task: &Task,
    evaluator: Option<EvaluatorKind>,
    net: Option<&str>,
    value: crate::net::ValueSource,
    objective: Objective,
) -> Guide {
    if objective == Objective::Latency && net.is_none() && evaluator.is_none() {
        return Guide::Heuristic;
    }
    match (net, evaluator) {
        (Some("none"), _) => Guide::Uniform,
        (Some(p), _) => Guide::Net {
            path: PathBuf::from(p),
            value,
            shipped: false,
        },
        (None, Some(EvaluatorKind::Heuristic)) => Guide::Heuristic,
        (None, Some(EvaluatorKind::Uniform)) => Guide::Uniform,
        (None, None) => match shipped_net(task) {
            Some(path) => Guide::Net {
                path,
                value,
                shipped: true,
            },
            None => Guide::Heuristic,
        },
    }
}

/// Settings of one search run.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Wall-clock budget.
    pub budget: Duration,
    /// Base seed; worker `i` uses `1000 * seed + i`.
    pub seed: u64,
    /// Worker threads (root parallelism), at least 1.
    pub threads: usize,
    /// MCTS or A*.
    pub strategy: Strategy,
    /// What guides MCTS (A* always uses the game's estimate).
    pub guide: Guide,
    /// Leaves per evaluator call (default 1; BENCHMARKS.md has why).
    pub leaf_batch: Option<u32>,
    /// Stop as soon as a kernel of at most this many instructions is found (length objective
    /// only).
    pub target: Option<usize>,
    /// What the search minimises.
    pub objective: Objective,
    /// Under latency, the meter that ranks the finalists (`None`: perf where hardware counters
    /// work, else tsc).
    pub meter: Option<crate::latency::MeterKind>,
    /// Folder for search logs.
    pub log_dir: PathBuf,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a search run produced.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    /// The search log, as written.
    pub log: SearchLog,
    /// Where the log was written (or would have been).
    pub log_path: PathBuf,
    /// Why the log could not be written, if it could not.
    pub log_error: Option<String>,
    /// Whether the best kernel passed both oracle stages.
    pub verified: bool,
}

/// Runs a search with `opts`, stopping at the budget, the target or when `stop` is set (by
/// Ctrl-C); verifies the best kernel; writes the log atomically. The log is written even when
/// nothing was found.
///
/// Errors: I/O on the log, or a JIT that cannot run.
pub fn run_search(
    task: &Task,
    opts: &SearchOptions,
    stop: Arc<AtomicBool>,
) -> Result<SearchOutcome> {
    // Fail before searching, not after, if the log cannot be written.
    let log_dir = opts.log_dir.join(&task.name);
    std::fs::create_dir_all(&log_dir).map_err(|e| crate::Error::io(&log_dir, e))?;
    tempfile::NamedTempFile::new_in(&log_dir).map_err(|e| crate::Error::io(&log_dir, e))?;
    let game = SortGame::with_objective(task, opts.objective);
    let start_time = time::OffsetDateTime::now_utc();
    let started = start_time
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of the current time");
    let budget = Budget {
        time: opts.budget,
        target: opts.target.map(|t| t as u32),
        max_expansions: None,
    };
    let threads = opts.threads.max(1);
    let mcts_cfg = MctsConfig {
        c_puct: 0.1,
        simulations: 50,
        leaf_batch: opts.leaf_batch.unwrap_or(1),
        ..MctsConfig::default()
    };
    let heuristic = HeuristicEvaluator { temperature: 1.0 };
    let net = match &opts.guide {
        Guide::Net { path, value, .. } => {
            let mut net =
                crate::net::PolicyValueNet::load_for(&game, &crate::net::checkpoint_stem(path))?;
            net.value_source = *value;
            Some(net)
        }
        _ => None,
    };

    // Root parallelism on a rayon pool of `threads` workers: independent searches
    // with different seeds (MCTS) or weights (A*) that share the best length.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::Error::Runtime(format!("cannot start {threads} threads: {e}")))?;
    // The budget's clock starts once the workers can run.
    let shared = Shared::new(budget, stop);
    // Under latency, keep what comes within two model cycles of the best for the real meter.
    let shared = match opts.objective {
        Objective::Length => shared,
        Objective::Latency => shared.keep_near_best(
            2 * crate::game::LATENCY_WEIGHT * crate::latency::model::TICKS_PER_CYCLE,
            FINALISTS,
        ),
    };
    let done = AtomicBool::new(false);
    let bar = opts.progress.then(|| progress_bar(opts.budget));
    let reason = std::thread::scope(|scope| {
        let (done, bar, shared) = (&done, &bar, &shared);
        let monitor = scope.spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(bar) = &bar {
                    let best = shared.best();
                    let el = shared.elapsed();
                    bar.set_position((el * 1000.0) as u64);
                    bar.set_message(format!(
                        "best {}{}  explored {}  {:.0}/s",
                        match opts.objective {
                            Objective::Length => "",
                            Objective::Latency => "cost ",
                        },
                        if best == u32::MAX {
                            "-".into()
                        } else {
                            best.to_string()
                        },
                        shared.explored(),
                        shared.explored() as f64 / el.max(1e-3)
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
        });
        let reasons: Vec<StopReason> = pool.install(|| {
            use rayon::prelude::*;
            (0..threads)
                .into_par_iter()
                .map(|i| {
                    let mut cfg = mcts_cfg.clone();
                    cfg.seed = opts.seed.wrapping_mul(1000).wrapping_add(i as u64);
                    let r = match (opts.strategy, &net, &opts.guide) {
                        (Strategy::Mcts, Some(net), _) => mcts(&game, net, &cfg, shared),
                        (Strategy::Mcts, None, Guide::Uniform) => {
                            mcts(&game, &UniformEvaluator, &cfg, shared)
                        }
                        (Strategy::Mcts, None, _) => mcts(&game, &heuristic, &cfg, shared),
                        // Workers 0-3 use weights 2, 1.5, 3, 5; workers 4-7 the same plus 1, and so on.
                        (Strategy::Astar, ..) => {
                            astar(&game, [2.0, 1.5, 3.0, 5.0][i % 4] + (i / 4) as f32, shared)
                        }
                    };
                    if r == StopReason::Exhausted {
                        // Nothing shorter exists in this worker's space: the others can stop.
                        shared.mark_exhausted();
                    }
                    r
                })
                .collect()
        });
        done.store(true, Ordering::Relaxed);
        monitor.join().expect("progress thread panicked");
        // One exhausted worker proves the best length optimal for the space: report that.
        reasons
            .into_iter()
            .min_by_key(|r| *r != StopReason::Exhausted)
            .unwrap_or(StopReason::Budget)
    });

    let found = shared.found();
    let timeline: Vec<Improvement> = found
        .iter()
        .filter_map(|f| {
            let program = finished(&game, &f.actions)?;
            Some(Improvement {
                length: program.len(),
                found_at_s: f.at_s,
                programs_explored: f.explored,
                model_cycles: (opts.objective == Objective::Latency)
                    .then(|| crate::latency::model::program_cycles(&program)),
            })
        })
        .collect();
    // Candidates in order of preference, best last (as `found`): under latency, the finalists
    // ranked by the real meter.
    let (candidates, latencies) = match opts.objective {
        Objective::Length => (
            found
                .iter()
                .filter_map(|f| game.program(&f.actions))
                .collect(),
            Vec::new(),
        ),
        Objective::Latency => rank_by_meter(task, &game, &found, &shared.near_best(), opts.meter)?,
    };
    let mut best = None;
    let mut verified = false;
    // Verify the best kernel; if it somehow fails, fall back to the next best.
    for (i, program) in candidates.iter().enumerate().rev() {
        let program = program.clone();
        let verdict = oracle::verify_program(task, &program, &NativeConfig::default())?;
        let ok = verdict.status == Status::Verified;
        best = Some(LoggedKernel {
            length: program.len(),
            verified: ok,
            checks: verdict.checks.clone(),
            program_att: program.iter().map(|i| i.att()).collect(),
            program_intel: program.iter().map(|i| i.intel()).collect(),
            latency: latencies.get(i).cloned(),
        });
        if ok {
            verified = true;
            break;
        }
        eprintln!(
            "warning: a {}-instruction kernel failed the oracle: {}",
            program.len(),
            verdict.reason.unwrap_or_default()
        );
    }
    let log = SearchLog {
        version: LOG_VERSION,
        superopt: env!("CARGO_PKG_VERSION").to_string(),
        task: task.name.clone(),
        task_source: task.source.clone(),
        config: serde_json::json!({
            "strategy": opts.strategy,
            "budget_s": opts.budget.as_secs_f64(),
            "threads": threads,
            "target": opts.target,
            "objective": opts.objective,
            "evaluator": match opts.strategy {
                Strategy::Mcts => opts.guide.describe(),
                Strategy::Astar => "estimate".to_string(),
            },
            "mcts": { "c_puct": mcts_cfg.c_puct, "simulations": mcts_cfg.simulations, "leaf_batch": mcts_cfg.leaf_batch, "prior_noise": mcts_cfg.prior_noise, "max_backup": mcts_cfg.max_backup },
            "test_vectors": game.test_vectors().len(),
            "moves": game.num_actions(),
        }),
        seed: opts.seed,
        started: started.clone(),
        elapsed_s: shared.elapsed(),
        stop_reason: serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        programs_explored: shared.explored(),
        timeline,
        best,
    };
    let log_path = SearchLog::default_path(&opts.log_dir, &task.name, start_time, opts.seed);
    // The kernel is printed even if the log cannot be written at the end.
    let (log_path, log_error) = match log.write_new(&log_path) {
        Ok(p) => (p, None),
        Err(e) => (log_path, Some(e.to_string())),
    };
    Ok(SearchOutcome {
        log,
        log_path,
        log_error,
        verified,
    })
}

/// The whole program of a solution; under latency without its dead code (see
/// [`crate::game::without_dead_code`]).
fn finished(game: &SortGame, actions: &[crate::search::Action]) -> Option<Vec<crate::isa::Insn>> {
    let p = game.program(actions)?;
    Some(match game.objective() {
        Objective::Length => p,
        Objective::Latency => crate::game::without_dead_code(&p),
    })
}

/// Most finalists measured by the real meter under `--objective latency` (measuring 64
/// sort5 kernels takes about 0.3 s with the tsc meter).
pub const FINALISTS: usize = 64;

/// Finalists measured again, with `bench`'s default sampling, after the quick first round.
pub const REMEASURED: usize = 8;

/// Under `--objective latency`: measures the distinct finalists (the improvements and the
/// solutions kept within two model cycles of the best, at most [`FINALISTS`], cheapest in the
/// model first) with the real meter: all of them quickly (300 passes in 3 rounds), then the
/// [`REMEASURED`] fastest again beside the classic network kernel with `bench`'s default
/// sampling ([`crate::latency::measure_all`]); each distinct program is measured once per
/// stage, ranked by the top of their 95% intervals. The network is a candidate too (flagged
/// [`LoggedLatency::baseline`]) and wins unless a found kernel's whole 95% interval lies below
/// the network's figure. Returns the programs ordered from
/// slowest to fastest measured, with their figures in the same order.
///
/// Errors: `--meter perf` without hardware counters; a JIT that cannot run.
fn rank_by_meter(
    task: &Task,
    game: &SortGame,
    found: &[crate::search::Found<Vec<crate::search::Action>>],
    near: &[crate::search::Found<Vec<crate::search::Action>>],
    meter: Option<crate::latency::MeterKind>,
) -> Result<(Vec<Vec<crate::isa::Insn>>, Vec<LoggedLatency>)> {
    use crate::latency::{self, model, Runner, SampleConfig};
    let mut all: Vec<&crate::search::Found<Vec<crate::search::Action>>> =
        found.iter().chain(near).collect();
    all.sort_by_key(|f| f.cost);
    let mut programs: Vec<Vec<crate::isa::Insn>> = Vec::new();
    for f in all {
        let Some(p) = finished(game, &f.actions) else {
            continue;
        };
        if !programs.contains(&p) {
            programs.push(p);
        }
        if programs.len() == FINALISTS {
            break;
        }
    }
    if programs.is_empty() {
        return Ok((programs, Vec::new()));
    }
    let finalists = programs.len();
    if meter == Some(latency::MeterKind::Model) {
        // The search already ranked by the model: keep its order, cheapest last.
        let mut ps = programs;
        ps.reverse();
        let figs = ps
            .iter()
            .map(|p| {
                let c = model::program_cycles(p);
                let m = latency::Measurement {
                    meter: latency::MeterKind::Model,
                    cycles: c,
                    interval: (c, c),
                    ns: None,
                    samples: 0,
                };
                logged(p, &m, None, finalists, false)
            })
            .collect();
        return Ok((ps, figs));
    }
    // Two stages: a quick measurement of every finalist, then the default one (as `bench`)
    // of the fastest few beside the network, so that the pick does not go to whichever
    // kernel a short measurement flattered.
    let quick = SampleConfig {
        samples: 300,
        rounds: 3,
        warmup: 30,
        ..SampleConfig::default()
    };
    let full = SampleConfig::default();
    let mut meter = latency::meter(latency::resolve(meter).0, &full)?;
    let n = task.n;
    let inputs = latency::Inputs {
        n,
        per_pass: full.inputs,
        seed: full.seed,
    };
    let runners = |ps: &mut dyn Iterator<Item = &Vec<crate::isa::Insn>>| -> Result<Vec<Runner>> {
        ps.map(|p| Runner::kernel(&crate::isa::encode(p), model::program_state(p), n))
            .collect()
    };
    let first = runners(&mut programs.iter())?;
    let refs: Vec<&Runner> = first.iter().collect();
    let quick_figures = latency::measure_all(meter.as_mut(), &refs, &inputs, &quick)?;
    let mut order: Vec<(f64, usize)> = quick_figures
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((m.as_ref()?.cycles, i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let programs: Vec<Vec<crate::isa::Insn>> = order
        .iter()
        .take(REMEASURED)
        .map(|&(_, i)| programs[i].clone())
        .collect();
    let network = crate::game::network::classic_kernel(task);
    // The network competes too, so that the answer is never slower than it (as STOKE starts
    // from the compiler's code); the report says when it wins. It is measured last.
    let second = runners(&mut programs.iter().chain(&network))?;
    let refs: Vec<&Runner> = second.iter().collect();
    let figures = latency::measure_all(meter.as_mut(), &refs, &inputs, &full)?;
    let network_cycles = network
        .as_ref()
        .and_then(|_| figures.last().cloned().flatten())
        .map(|m| m.cycles);
    let mut ranked: Vec<(Vec<crate::isa::Insn>, LoggedLatency)> = programs
        .iter()
        .chain(&network)
        .zip(&figures)
        .enumerate()
        .filter_map(|(i, (p, m))| {
            let baseline = i == programs.len();
            Some((
                p.clone(),
                logged(p, m.as_ref()?, network_cycles, finalists, baseline),
            ))
        })
        .collect();
    // Slowest first, so that the fastest is tried first by the caller (which reads from the
    // end). Ranked by the top of the 95% interval, so that a kernel some rounds flattered
    // does not win on its median; then by the median, then by the model.
    ranked.sort_by(|a, b| {
        b.1.interval
            .1
            .total_cmp(&a.1.interval.1)
            .then(b.1.cycles.total_cmp(&a.1.cycles))
            .then(b.1.model_cycles.total_cmp(&a.1.model_cycles))
    });
    // The network is the incumbent: a found kernel replaces it only when its whole 95%
    // interval lies below the network's figure; otherwise the network is tried first.
    if let Some(b) = ranked.iter().position(|r| r.1.baseline) {
        let clearly_faster = |r: &LoggedLatency| network_cycles.is_some_and(|c| r.interval.1 < c);
        if !ranked
            .last()
            .is_some_and(|r| !r.1.baseline && clearly_faster(&r.1))
        {
            let mut net = ranked.remove(b);
            net.1.runner_up = ranked.last().map(|(p, l)| crate::log::RunnerUp {
                program_att: p.iter().map(|i| i.att()).collect(),
                cycles: l.cycles,
                interval: l.interval,
                model_cycles: l.model_cycles,
            });
            ranked.push(net);
        }
    }
    Ok(ranked.into_iter().unzip())
}

/// The log's latency record of program `p` measured as `m`.
fn logged(
    p: &[crate::isa::Insn],
    m: &crate::latency::Measurement,
    network_cycles: Option<f64>,
    finalists: usize,
    baseline: bool,
) -> LoggedLatency {
    LoggedLatency {
        meter: m.meter.name().into(),
        unit: m.meter.unit().into(),
        cycles: m.cycles,
        interval: m.interval,
        network_cycles,
        ratio: network_cycles.map(|b| m.cycles / b),
        model_cycles: crate::latency::model::program_cycles(p),
        finalists,
        baseline,
        runner_up: None,
    }
}

fn progress_bar(budget: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(budget.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}
