//! `superopt search`: runs the search on a task, verifies the best kernel with the full
//! oracle, prints it and writes the search log.

use crate::game::{Objective, SortGame};
use crate::log::{
    Improvement, LoggedKernel, LoggedLatency, ResumeRecord, RunRecord, SearchLog, LOG_VERSION,
    RUNNING,
};
use crate::oracle::{self, NativeConfig, Status};
use crate::search::{
    astar, lns, mcts, Budget, Environment, HeuristicEvaluator, MctsConfig, ResumePoint, Shared,
    StopReason, UniformEvaluator,
};
use crate::task::Task;
use crate::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most worker threads a search may start (root parallelism gains nothing from thousands).
pub const MAX_THREADS: usize = 256;

/// The largest `--seed` a new search accepts, 18,446,744,073,709,551: worker `i` (below
/// [`MAX_THREADS`]) seeds its stream with `1000 * seed + i` ([`worker_seed`]), which past it
/// would wrap around 2^64 (seed 2^61 would search as seed 0).
pub const MAX_SEED: u64 = (u64::MAX - (MAX_THREADS as u64 - 1)) / 1000;

/// The seed of worker `i`'s random stream in a search with `seed`: `1000 * seed + i`, so
/// distinct `(seed, i)` give distinct worker seeds for every seed up to [`MAX_SEED`] and `i`
/// below 1000. The product wraps only for larger seeds, which new searches refuse; a log
/// written with one before that (resumed) continues with the streams it started with.
pub fn worker_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(1000).wrapping_add(i as u64)
}

/// Which search strategy to run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Monte-Carlo tree search with PUCT, played in episodes (AlphaDev's search).
    Mcts,
    /// Anytime weighted A* over the same game and heuristics.
    Astar,
    /// Large neighbourhood search around the incumbent (the seeded classic network first):
    /// bounded A* over the completions of ever shorter prefixes of the best kernel
    /// ([`crate::search::lns`]). The default past 5 elements.
    Lns,
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

/// What guides MCTS, resolved from `--evaluator` and `--net` by [`resolve_guide`]. Logs
/// record it as `{"kind": "heuristic"}`, `{"kind": "net", "path", "value", "shipped",
/// "heuristic"}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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
        /// Whether the net's priors are multiplied by the heuristic's (`--net-prior
        /// net-heuristic`, the default; logs written before it existed read as `false`).
        #[serde(default)]
        heuristic: bool,
    },
}

/// Where a net-guided search takes its priors from (`--net-prior`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NetPrior {
    /// The net's priors times the heuristic's (a product of experts): over ten seeds, fewer
    /// programs on the median and the mean than the net or the heuristic alone, though not on
    /// every seed (BENCHMARKS.md, "Learning").
    #[default]
    NetHeuristic,
    /// The net's priors alone (as AlphaDev).
    Net,
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
                heuristic,
            } => format!(
                "net {}{}{}{}",
                path.display(),
                if *shipped { " (shipped)" } else { "" },
                if *heuristic { " x heuristic" } else { "" },
                if *value == crate::net::ValueSource::Net {
                    ", net values"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Where a relative path recorded in the search log at `log` (a net's) can be found when the
/// log is resumed from another folder: as written if it exists, else relative to the log's
/// folder and the two folders above it (a log under `search-logs/<task>/`), else relative to
/// the source tree this binary was built from (the shipped `nets/`); the path as written when
/// none exists (the error then names it).
pub fn resolve_logged_path(path: &Path, log: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    log_folders(log)
        .into_iter()
        .chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))))
        .map(|d| d.join(path))
        .find(|p| p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

/// The folders a relative path recorded in the log at `log` may be relative to when the log
/// is read from elsewhere: the log's folder and the two above it (a log under
/// `search-logs/<task>/` of the folder the search ran in).
fn log_folders(log: &Path) -> Vec<PathBuf> {
    log.parent()
        .into_iter()
        .flat_map(|d| d.ancestors().take(3).map(Path::to_path_buf))
        .collect()
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
/// in [`shipped_net_dirs`] and can serve the task. A task named for its element type
/// (`sort3-u32`) without a net of its own uses the net of the name without the suffix
/// (`sort3`): the net reads order types and a condition code by the order it tests
/// ([`crate::isa::Cond::as_signed`]), which are the same for every element type.
pub fn shipped_net(task: &Task) -> Option<PathBuf> {
    let game = SortGame::new(task);
    let suffix = format!("-{}", task.element);
    let names = [Some(task.name.as_str()), task.name.strip_suffix(&suffix)];
    shipped_net_dirs().into_iter().find_map(|d| {
        names.iter().flatten().find_map(|name| {
            let stem = d.join(name);
            let weights = crate::net::with_suffix(&stem, "safetensors");
            (weights.is_file() && crate::net::PolicyValueNet::load_for(&game, &stem).is_ok())
                .then_some(weights)
        })
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
    prior: NetPrior,
    objective: Objective,
) -> Guide {
    let heuristic = prior == NetPrior::NetHeuristic;
    if objective == Objective::Latency && net.is_none() && evaluator.is_none() {
        return Guide::Heuristic;
    }
    match (net, evaluator) {
        (Some("none"), _) => Guide::Uniform,
        (Some(p), _) => Guide::Net {
            path: PathBuf::from(p),
            value,
            shipped: false,
            heuristic,
        },
        (None, Some(EvaluatorKind::Heuristic)) => Guide::Heuristic,
        (None, Some(EvaluatorKind::Uniform)) => Guide::Uniform,
        (None, None) => match shipped_net(task) {
            Some(path) => Guide::Net {
                path,
                value,
                shipped: true,
                heuristic,
            },
            None => Guide::Heuristic,
        },
    }
}

/// Settings of one search run.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Wall-clock budget of this run (a resumed search runs this much more).
    pub budget: Duration,
    /// Base seed, at most [`MAX_SEED`] for a new search; worker `i` uses `1000 * seed + i`
    /// ([`worker_seed`]).
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
    /// The latency model's table: what `--objective latency` costs during the search, and
    /// the model figures in the log.
    pub uarch: crate::latency::model::Uarch,
    /// Folder for search logs.
    pub log_dir: PathBuf,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Seconds between checkpoints of the log while searching (`None`: only at the start and
    /// the end).
    pub checkpoint_every: Option<Duration>,
    /// Most tree nodes written to the log (0: no tree).
    pub tree_nodes: usize,
    /// Whether the search starts with the classic sorting network as its incumbent.
    pub incumbent: bool,
    /// Where a guiding net runs.
    pub device: crate::net::DeviceKind,
    /// A saved search to continue instead of starting afresh.
    pub resume: Option<Resume>,
}

/// A saved search to continue (`search --resume`).
#[derive(Clone, Debug)]
pub struct Resume {
    /// The log it was read from, which the continued search keeps writing.
    pub path: PathBuf,
    /// The log as read.
    pub log: SearchLog,
}

/// Default most tree nodes written to a search log (about 230 bytes of JSON each).
pub const TREE_NODES: usize = 5_000;

/// Most nodes the merged MCTS tree keeps in memory (about 100 bytes each); past it the least
/// visited are dropped.
pub const TREE_CAPACITY: usize = 500_000;

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

/// The settings a saved search ran with, read back from its log's `config` for `--resume`.
#[derive(serde::Deserialize)]
struct SavedConfig {
    strategy: Strategy,
    threads: usize,
    target: Option<usize>,
    #[serde(default)]
    objective: Objective,
    #[serde(default)]
    meter: Option<crate::latency::MeterKind>,
    /// Logs before the Intel table were searched with the Zen 4 one.
    #[serde(default)]
    uarch: crate::latency::model::Uarch,
    guide: Guide,
    budget_s: f64,
    mcts: SavedMcts,
    #[serde(default)]
    checkpoint_s: Option<f64>,
    #[serde(default)]
    tree_nodes: Option<usize>,
    #[serde(default)]
    device: crate::net::DeviceKind,
    /// Logs before the incumbent existed started without one.
    #[serde(default)]
    incumbent: Option<String>,
}

#[derive(serde::Deserialize)]
struct SavedMcts {
    leaf_batch: u32,
}

/// The task and options of the saved search in `path`, to continue it for `budget` more
/// (default: what is left of its own budget).
///
/// Errors ([`crate::Error::Log`], naming the log): an unreadable log (see
/// [`SearchLog::read`]); a version 1 log (`written before --resume existed: no moves or
/// random streams to continue from`); an exhausted search, one that reached its target, one
/// whose budget is used up when no `budget` is given; a task file that cannot be loaded.
pub fn resume_options(
    path: &std::path::Path,
    budget: Option<Duration>,
    progress: bool,
) -> Result<(Task, SearchOptions)> {
    let log = SearchLog::read(path)?;
    let bad = |message: String| crate::Error::Log {
        path: path.into(),
        message,
    };
    if log.version < 2 {
        return Err(bad(format!(
            "cannot resume a version {} log: it was written before --resume existed (no moves or random streams to continue from)",
            log.version
        )));
    }
    if log.resume.is_none() || log.moves_hash.is_none() {
        return Err(bad(
            "corrupted search log: no \"resume\" or \"moves_hash\" field, which --resume needs"
                .into(),
        ));
    }
    let saved: SavedConfig = serde_json::from_value(log.config.clone())
        .map_err(|e| bad(format!("corrupted search log: config: {e}")))?;
    match log.stop_reason.as_str() {
        "exhausted" => {
            return Err(bad(
                "cannot resume: the search was exhausted (no shorter program is left in the space it searched)".into(),
            ))
        }
        "target" => {
            return Err(bad(format!(
                "cannot resume: the search already reached its --target of {}",
                saved.target.map_or("?".into(), |t| t.to_string())
            )))
        }
        _ => {}
    }
    // Numbers a hand-edited log could make nonsense of (and Duration would panic on), each
    // checked against the most a search writes: `checkpoint_s` is at most MAX_BUDGET (it is
    // parsed by parse_budget), `budget_s` is the last run's budget (at most MAX_BUDGET) on top
    // of the time already spent, so at most `elapsed_s + MAX_BUDGET`; versions before
    // MAX_BUDGET wrote any value under 1e9 s, which still reads. (elapsed_s, under 1e9 s or 31
    // years of searching, is checked by SearchLog::read.)
    let seconds = |what: &str, x: f64, most: f64| {
        if !(x.is_finite() && x >= 0.0) {
            Err(bad(format!(
                "corrupted search log: {what} is {x}, not a number of seconds"
            )))
        } else if x > most {
            Err(bad(format!(
                "corrupted search log: {what} is {x} s, more than a search writes ({most} s)"
            )))
        } else {
            Ok(x)
        }
    };
    let max_budget = crate::task::MAX_BUDGET.as_secs_f64();
    // One second of slack for the rounding of the sum.
    seconds(
        "config.budget_s",
        saved.budget_s,
        (log.elapsed_s + max_budget + 1.0).max(1e9),
    )?;
    let checkpoint_every = match saved.checkpoint_s {
        Some(c) => Some(Duration::from_secs_f64(
            // At most MAX_BUDGET, under the bound older versions checked.
            seconds("config.checkpoint_s", c, 1e9)?.max(0.001),
        )),
        None => None,
    };
    if let Some(k) = log.resume.as_ref().and_then(|r| {
        r.rngs
            .iter()
            .position(|x| x.as_ref().is_some_and(|x| x.restore().is_none()))
    }) {
        return Err(bad(format!(
            "corrupted search log: the random stream of worker {k} does not parse"
        )));
    }
    let budget = match budget {
        Some(b) => b,
        None => {
            let left = saved.budget_s - log.elapsed_s;
            if left < 0.5 {
                return Err(bad(format!(
                    "cannot resume: the search used its whole budget ({:.0} s of {:.0} s); give --budget to run it longer",
                    log.elapsed_s, saved.budget_s
                )));
            }
            Duration::from_secs_f64(left)
        }
    };
    let task = log_task(&log, path).map_err(|e| bad(format!("cannot resume: {e}")))?;
    let guide = saved.guide;
    let opts = SearchOptions {
        budget,
        seed: log.seed,
        threads: saved.threads.clamp(1, MAX_THREADS),
        strategy: saved.strategy,
        guide,
        leaf_batch: Some(saved.mcts.leaf_batch.clamp(1, 256)),
        target: saved.target,
        objective: saved.objective,
        meter: saved.meter,
        uarch: saved.uarch,
        log_dir: path
            .parent()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .unwrap_or_default(),
        progress,
        checkpoint_every,
        tree_nodes: saved.tree_nodes.unwrap_or(TREE_NODES),
        incumbent: saved.incumbent.as_deref() == Some("network"),
        device: saved.device,
        resume: Some(Resume {
            path: path.to_path_buf(),
            log,
        }),
    };
    Ok((task, opts))
}

/// The task the log at `log_path` names: a built-in (`builtin:sort3`, which must be one) or
/// a task file. Logs record a task file's absolute path; older logs recorded it as the
/// search was given it, relative to the folder the search ran in, which is tried as written
/// (relative to the current folder), then relative to the log's folder and the two folders
/// above it (`search-logs/<task>/` is under the folder the search ran in with the default
/// `--log-dir`); the first that holds the log's task is taken.
///
/// Errors: the task cannot be loaded, or it is not the log's task (a task file edited or
/// replaced since, or read from another folder: `task_source my.toml now holds task zzz,
/// not the log's task mysort`); for a relative path none of the candidates holds it, and the
/// error is the one for the path as written.
pub fn log_task(log: &SearchLog, log_path: &std::path::Path) -> Result<Task> {
    let check = |task: Task| {
        if task.name == log.task {
            Ok(task)
        } else {
            Err(crate::Error::Runtime(format!(
                "task_source {} now holds task {}, not the log's task {}",
                log.task_source, task.name, log.task
            )))
        }
    };
    let source = match log.task_source.strip_prefix("builtin:") {
        Some(name) if crate::task::BUILTIN.iter().any(|(n, _)| *n == name) => {
            return check(Task::load(name)?)
        }
        Some(name) => {
            return Err(crate::Error::UnknownTask {
                name: name.to_string(),
                known: crate::task::BUILTIN.map(|(n, _)| n).join(", "),
            })
        }
        None => std::path::Path::new(&log.task_source),
    };
    let as_written = Task::load(&log.task_source).and_then(check);
    if as_written.is_ok() || source.is_absolute() {
        return as_written;
    }
    for dir in log_folders(log_path) {
        let candidate = dir.join(source);
        if candidate.is_file() {
            if let Ok(task) = Task::load(&candidate.display().to_string()).and_then(check) {
                return Ok(task);
            }
        }
    }
    as_written
}

/// The hash of a game's move table, as logs record it.
pub fn moves_hash(game: &SortGame) -> String {
    let text: Vec<String> = (0..game.num_actions())
        .map(|a| game.describe(a as crate::search::Action))
        .collect();
    crate::log::content_hash(text.join("\n").as_bytes())
}

/// Where a resumed search starts: the saved log's improvements (replayed through `game`, so
/// a log of another task or an edited one is refused), tree, counters and random streams.
///
/// Errors: [`crate::Error::Log`] naming the log and the problem.
fn resume_point(game: &SortGame, r: &Resume, record_tree: bool) -> Result<ResumePoint> {
    let bad = |message: String| crate::Error::Log {
        path: r.path.clone(),
        message,
    };
    let log = &r.log;
    let here = moves_hash(game);
    if log.moves_hash.as_deref() != Some(here.as_str()) {
        return Err(bad(format!(
            "cannot resume: the task's move table changed since the search (log {}, now {here})",
            log.moves_hash.as_deref().unwrap_or("none")
        )));
    }
    let mut found = Vec::new();
    for (k, imp) in log.timeline.iter().enumerate() {
        let actions = imp.actions.clone().ok_or_else(|| {
            bad(format!(
                "corrupted search log: improvement {} has no moves",
                k + 1
            ))
        })?;
        let cost = replay_cost(game, &actions).ok_or_else(|| {
            bad(format!(
                "corrupted search log: the moves of improvement {} do not replay to a solution",
                k + 1
            ))
        })?;
        found.push(crate::search::Found {
            cost,
            at_s: imp.found_at_s,
            explored: imp.programs_explored,
            actions,
        });
    }
    if let Some(t) = &log.tree {
        if let Some(i) = t
            .nodes
            .iter()
            .position(|n| n.action.is_some_and(|a| a as usize >= game.num_actions()))
        {
            return Err(bad(format!(
                "corrupted search log: tree node {i} has move {}, beyond the {} moves of the task",
                t.nodes[i].action.unwrap_or_default(),
                game.num_actions()
            )));
        }
    }
    let tree = match (&log.tree, record_tree) {
        (Some(t), true) => Some(
            crate::search::SearchTree::from_snapshot(t, TREE_CAPACITY)
                .map_err(|e| bad(format!("corrupted search log: {e}")))?,
        ),
        _ => None,
    };
    let resume = log.resume.clone().unwrap_or_default();
    Ok(ResumePoint {
        elapsed_s: log.elapsed_s,
        explored: log.programs_explored,
        found,
        tree,
        stats: log.stats.clone().unwrap_or_default(),
        rngs: resume.rngs,
    })
}

/// The total cost of the solution reached by `actions`, if they replay to one.
fn replay_cost(game: &SortGame, actions: &[crate::search::Action]) -> Option<u32> {
    let mut s = game.initial();
    for &a in actions {
        if (a as usize) >= game.num_actions() {
            return None;
        }
        s = game.step(&s, a)?;
    }
    game.solution_cost(&s)
}

/// The parts of a log that do not change while a search runs.
struct LogHead {
    config: serde_json::Value,
    started: String,
    moves_hash: String,
    network: Option<crate::log::NetworkRef>,
    runs: Vec<RunRecord>,
    run_started: String,
    tree_nodes: usize,
}

impl LogHead {
    /// The log of `shared` as it stands, with `best` and `stop_reason`.
    fn log(
        &self,
        task: &Task,
        game: &SortGame,
        opts: &SearchOptions,
        shared: &Shared,
        stop_reason: &str,
        best: Option<LoggedKernel>,
    ) -> SearchLog {
        let (tree, stats, rngs) = shared.snapshot(1, self.tree_nodes, |a| game.describe(a));
        let mut runs = self.runs.clone();
        runs.push(RunRecord {
            started: self.run_started.clone(),
            elapsed_s: shared.run_elapsed(),
            stop_reason: stop_reason.into(),
            programs_explored: shared.explored(),
        });
        SearchLog {
            version: LOG_VERSION,
            superopt: env!("CARGO_PKG_VERSION").to_string(),
            task: task.name.clone(),
            task_source: task.source.clone(),
            config: self.config.clone(),
            seed: opts.seed,
            started: self.started.clone(),
            elapsed_s: shared.elapsed(),
            stop_reason: stop_reason.into(),
            programs_explored: shared.explored(),
            timeline: timeline(game, &shared.found()),
            best,
            moves_hash: Some(self.moves_hash.clone()),
            network: self.network.clone(),
            tree,
            stats: Some(stats),
            resume: Some(ResumeRecord { rngs, runs }),
        }
    }
}

/// The improvements as the log records them.
fn timeline(
    game: &SortGame,
    found: &[crate::search::Found<Vec<crate::search::Action>>],
) -> Vec<Improvement> {
    found
        .iter()
        .filter_map(|f| {
            let program = finished(game, &f.actions)?;
            Some(Improvement {
                length: program.len(),
                found_at_s: f.at_s,
                programs_explored: f.explored,
                model_cycles: (game.objective() == Objective::Latency).then(|| {
                    crate::latency::model::program_state_on(game.uarch(), &program).cycles()
                }),
                actions: Some(f.actions.clone()),
            })
        })
        .collect()
}

/// The best of `candidates` (best last) that passes both oracle stages (or is proved and needs
/// CPU features this CPU lacks: [`LoggedKernel::not_run`]), or the last one tried with its
/// failing verdict; warns on stderr about each that fails.
fn verify_best(
    task: &Task,
    candidates: &[Vec<crate::isa::Insn>],
    latencies: &[LoggedLatency],
) -> Result<Option<LoggedKernel>> {
    let mut best = None;
    for (i, program) in candidates.iter().enumerate().rev() {
        let verdict = oracle::verify_program(task, program, &NativeConfig::default())?;
        let ok = verdict.status == Status::Verified;
        let not_run = verdict.status == Status::ProvedNotRun;
        best = Some(LoggedKernel {
            length: program.len(),
            verified: ok,
            not_run: not_run.then(|| verdict.reason.clone().unwrap_or_default()),
            checks: verdict.checks.clone(),
            program_att: program.iter().map(|i| i.att_as(task.element)).collect(),
            program_intel: program.iter().map(|i| i.intel_as(task.element)).collect(),
            latency: latencies.get(i).cloned(),
        });
        if ok || not_run {
            // A proved kernel that needs CPU features this CPU lacks cannot do better here.
            break;
        }
        eprintln!(
            "warning: a {}-instruction kernel failed the oracle: {}",
            program.len(),
            verdict.reason.unwrap_or_default()
        );
    }
    Ok(best)
}

/// Runs a search with `opts`, stopping at the budget, the target or when `stop` is set (by
/// Ctrl-C); verifies the best kernel; writes the log atomically when the search starts, every
/// [`SearchOptions::checkpoint_every`] while it runs (with the best kernel so far, verified)
/// and at the end, so a killed search loses at most one interval. With
/// [`SearchOptions::resume`] it continues the saved search and keeps writing its log.
///
/// Errors: a new search's seed above [`MAX_SEED`] (`--seed 2305843009213693952 is too large:
/// the maximum is 18446744073709551 (worker i seeds its stream with 1000 x seed + i)`), I/O on
/// the log before the search starts, a log that cannot be resumed, a net that cannot serve
/// the task, or a JIT that cannot run. A log that cannot be written at the end is reported in
/// [`SearchOutcome::log_error`], after the kernel.
pub fn run_search(
    task: &Task,
    opts: &SearchOptions,
    stop: Arc<AtomicBool>,
) -> Result<SearchOutcome> {
    if opts.resume.is_none() && opts.seed > MAX_SEED {
        return Err(crate::Error::Runtime(format!(
            "--seed {} is too large: the maximum is {MAX_SEED} (worker i seeds its stream with 1000 x seed + i)",
            opts.seed
        )));
    }
    let game = SortGame::with_objective(task, opts.objective).with_uarch(opts.uarch);
    if opts.objective == Objective::Latency && opts.meter != Some(crate::latency::MeterKind::Model)
    {
        // The finalists run on this CPU: refuse before searching when they cannot.
        let moves: Vec<crate::isa::Insn> = game
            .loads()
            .into_iter()
            .chain(game.moves().iter().copied())
            .collect();
        let missing: Vec<String> =
            crate::asm::lacking(crate::isa::features_as(&moves, task.element))
                .into_iter()
                .map(crate::isa::feature_name)
                .collect();
        if !missing.is_empty() {
            return Err(crate::Error::Runtime(format!(
                "search --objective latency times its finalists on this CPU, and task {}'s moves need {}, which this CPU lacks (rank them with --meter model)",
                task.name,
                missing.join(", ")
            )));
        }
    }
    let start_time = time::OffsetDateTime::now_utc();
    let run_started = start_time
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
    let (net, network) = match &opts.guide {
        Guide::Net { path, value, .. } => {
            let path = match &opts.resume {
                Some(r) => resolve_logged_path(path, &r.path),
                None => path.clone(),
            };
            let stem = crate::net::checkpoint_stem(&path);
            let mut net = crate::net::PolicyValueNet::load_for(&game, &stem).map_err(|e| {
                match &opts.resume {
                    // Name the log: its net path may be relative to where the search ran.
                    Some(r) => crate::Error::Log {
                        path: r.path.clone(),
                        message: format!(
                            "cannot resume: the net the search used cannot be loaded from here ({e}); run from the folder the search ran in"
                        ),
                    },
                    None => e,
                }
            })?;
            net.value_source = *value;
            if opts.device != crate::net::DeviceKind::Cpu {
                net = net.to_device(&opts.device.device()?)?;
            }
            let weights = crate::net::with_suffix(&stem, "safetensors");
            let bytes = std::fs::read(&weights).map_err(|e| crate::Error::io(&weights, e))?;
            let network = crate::log::NetworkRef {
                path: path.display().to_string(),
                hash: crate::log::content_hash(&bytes),
            };
            (Some(net), Some(network))
        }
        _ => (None, None),
    };
    if let (Some(r), Some(now)) = (&opts.resume, &network) {
        if let Some(then) = r.log.network.as_ref().filter(|then| then.hash != now.hash) {
            return Err(crate::Error::Log {
                path: r.path.clone(),
                message: format!(
                    "cannot resume: the net {} changed since the search (log {}, now {})",
                    now.path, then.hash, now.hash
                ),
            });
        }
    }
    let record_tree = opts.strategy == Strategy::Mcts && opts.tree_nodes > 0;
    let resume_from = match &opts.resume {
        Some(r) => Some(resume_point(&game, r, record_tree)?),
        None => None,
    };

    let config = serde_json::json!({
        "strategy": opts.strategy,
        "budget_s": opts.budget.as_secs_f64()
            + opts.resume.as_ref().map_or(0.0, |r| r.log.elapsed_s),
        "threads": threads,
        "target": opts.target,
        "objective": opts.objective,
        "meter": opts.meter,
        "uarch": opts.uarch,
        "evaluator": match opts.strategy {
            Strategy::Mcts => opts.guide.describe(),
            Strategy::Astar | Strategy::Lns => "estimate".to_string(),
        },
        "guide": opts.guide,
        "mcts": { "c_puct": mcts_cfg.c_puct, "simulations": mcts_cfg.simulations, "leaf_batch": mcts_cfg.leaf_batch, "prior_noise": mcts_cfg.prior_noise, "max_backup": mcts_cfg.max_backup },
        "test_vectors": game.test_vectors().len(),
        "moves": game.num_actions(),
        "checkpoint_s": opts.checkpoint_every.map(|d| d.as_secs_f64()),
        "tree_nodes": opts.tree_nodes,
        "incumbent": if opts.incumbent { "network" } else { "none" },
        "device": opts.device,
    });
    let head = LogHead {
        config,
        started: opts
            .resume
            .as_ref()
            .map_or(run_started.clone(), |r| r.log.started.clone()),
        moves_hash: moves_hash(&game),
        network,
        runs: opts
            .resume
            .as_ref()
            .and_then(|r| r.log.resume.as_ref())
            .map_or(Vec::new(), |res| res.runs.clone()),
        run_started,
        tree_nodes: opts.tree_nodes,
    };

    // Root parallelism on a rayon pool of `threads` workers: independent searches
    // with different seeds (MCTS) or weights (A*) that share the best length.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::Error::Runtime(format!("cannot start {threads} threads: {e}")))?;
    // The budget's clock starts once the workers can run.
    let mut shared = Shared::new(budget, stop);
    if record_tree {
        shared = shared.record_tree(TREE_CAPACITY);
    }
    if let Some(from) = resume_from {
        shared = shared.resume(from);
    }
    // Never worse than the textbook: the classic network, played by the game's rules, is the
    // incumbent from the start (a resumed search has it among its improvements already).
    if opts.resume.is_none() && opts.incumbent {
        if let Some(actions) = game.network_actions() {
            if let Some(cost) = replay_cost(&game, &actions) {
                shared.seed(cost, &actions);
            }
        }
    }
    // Under latency, keep what comes within two model cycles of the best for the real meter.
    let shared = match opts.objective {
        Objective::Length => shared,
        Objective::Latency => shared.keep_near_best(
            2 * crate::game::LATENCY_WEIGHT * crate::latency::model::TICKS_PER_CYCLE,
            FINALISTS,
        ),
    };
    // The log is written before the search starts (which also reserves its name, and fails
    // now rather than after the budget if it cannot be written), then at each checkpoint.
    // The log's lock is held until the search ends (see LogLock).
    let (log_path, _lock) = match &opts.resume {
        Some(r) => {
            let lock = crate::log::LogLock::acquire(&r.path)?;
            // Read again under the lock: the log may have changed since it was read.
            if SearchLog::read(&r.path)?.elapsed_s != r.log.elapsed_s {
                return Err(crate::Error::Log {
                    path: r.path.clone(),
                    message:
                        "the log changed since it was read (another search wrote it); resume again"
                            .into(),
                });
            }
            let log = head.log(task, &game, opts, &shared, RUNNING, r.log.best.clone());
            log.write_atomic(&r.path)?;
            (r.path.clone(), lock)
        }
        None => {
            let path = SearchLog::default_path(&opts.log_dir, &task.name, start_time, opts.seed);
            let path = head
                .log(task, &game, opts, &shared, RUNNING, None)
                .write_new(&path)?;
            let lock = crate::log::LogLock::acquire(&path)?;
            (path, lock)
        }
    };
    let done = AtomicBool::new(false);
    let bar = opts.progress.then(|| progress_bar(opts.budget));
    let reason = std::thread::scope(|scope| {
        let (done, bar, shared, head, game, log_path) =
            (&done, &bar, &shared, &head, &game, &log_path);
        let monitor = scope.spawn(move || {
            let mut last_checkpoint = std::time::Instant::now();
            // The best kernel verified at the last checkpoint, by the number of improvements.
            let mut verified: (usize, Option<LoggedKernel>) =
                (0, opts.resume.as_ref().and_then(|r| r.log.best.clone()));
            let mut warned = false;
            while !done.load(Ordering::Relaxed) {
                if let Some(bar) = &bar {
                    let best = shared.best();
                    let el = shared.run_elapsed();
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
                        shared.explored() as f64 / shared.elapsed().max(1e-3)
                    ));
                }
                if opts
                    .checkpoint_every
                    .is_some_and(|every| last_checkpoint.elapsed() >= every)
                {
                    last_checkpoint = std::time::Instant::now();
                    let found = shared.found();
                    if found.len() != verified.0 {
                        let candidates: Vec<Vec<crate::isa::Insn>> = found
                            .iter()
                            .filter_map(|f| finished(game, &f.actions))
                            .collect();
                        if let Ok(b) = verify_best(task, &candidates, &[]) {
                            verified = (found.len(), b);
                        }
                    }
                    let log = head.log(task, game, opts, shared, RUNNING, verified.1.clone());
                    if let Err(e) = log.write_atomic(log_path) {
                        if !warned {
                            warned = true;
                            let line = format!("warning: checkpoint not written: {e}");
                            // Through the bar when it shows (so it is not drawn over), else
                            // straight to stderr (a hidden bar prints nothing).
                            match &bar {
                                Some(bar) if !bar.is_hidden() => bar.println(line),
                                _ => eprintln!("{line}"),
                            }
                        }
                    }
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
                    cfg.seed = worker_seed(opts.seed, i);
                    cfg.worker = i;
                    let r = match (opts.strategy, &net, &opts.guide) {
                        (
                            Strategy::Mcts,
                            Some(net),
                            Guide::Net {
                                heuristic: true, ..
                            },
                        ) => {
                            let product = crate::search::ProductEvaluator {
                                a: net,
                                b: &heuristic,
                                weight: 1.0,
                            };
                            mcts(game, &product, &cfg, shared)
                        }
                        (Strategy::Mcts, Some(net), _) => mcts(game, net, &cfg, shared),
                        (Strategy::Mcts, None, Guide::Uniform) => {
                            mcts(game, &UniformEvaluator, &cfg, shared)
                        }
                        (Strategy::Mcts, None, _) => mcts(game, &heuristic, &cfg, shared),
                        // Worker 0 runs weight 1.5, the others 2, 3, 5 (then the same plus 1).
                        (Strategy::Lns, ..) => {
                            lns(game, [1.5, 2.0, 3.0, 5.0][i % 4] + (i / 4) as f32, shared)
                        }
                        // Workers 0-3 use weights 2, 1.5, 3, 5; workers 4-7 the same plus 1, and so on.
                        (Strategy::Astar, ..) => {
                            astar(game, [2.0, 1.5, 3.0, 5.0][i % 4] + (i / 4) as f32, shared)
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
    let best = verify_best(task, &candidates, &latencies)?;
    let verified = best.as_ref().is_some_and(|b| b.verified);
    let stop_reason = serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let log = head.log(task, &game, opts, &shared, &stop_reason, best);
    // The kernel is printed even if the log cannot be written at the end.
    let log_error = log.write_atomic(&log_path).err().map(|e| e.to_string());
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
                let c = model::program_state_on(game.uarch(), p).cycles();
                let m = latency::Measurement {
                    meter: latency::MeterKind::Model,
                    cycles: c,
                    interval: (c, c),
                    ns: None,
                    samples: 0,
                };
                logged(game.uarch(), p, &m, None, finalists, false)
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
    let full = SampleConfig {
        uarch: game.uarch(),
        ..SampleConfig::default()
    };
    let mut meter = latency::meter(latency::resolve(meter).0, &full)?;
    // 64-bit elements run as twice as many 32-bit words ([`latency::lanes`]).
    let (n, el) = (latency::lanes(task.n, task.element), task.element);
    let inputs = latency::Inputs {
        n,
        per_pass: full.inputs,
        seed: full.seed,
    };
    let runners = |ps: &mut dyn Iterator<Item = &Vec<crate::isa::Insn>>| -> Result<Vec<Runner>> {
        ps.map(|p| {
            let m = model::program_state_on(game.uarch(), p);
            Runner::kernel(&crate::isa::encode_as(p, el), m, n)
        })
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
    let network = crate::game::network::classic_kernel(task);
    // The network is measured once, as the baseline: a finalist equal to it is not measured
    // again beside it (it could otherwise be called faster than itself).
    let programs: Vec<Vec<crate::isa::Insn>> = order
        .iter()
        .take(REMEASURED)
        .map(|&(_, i)| programs[i].clone())
        .filter(|p| Some(p) != network.as_ref())
        .collect();
    // The network competes too, so that the answer is never slower than it (as STOKE starts
    // from the compiler's code); the report says when it wins. It is measured last.
    let second = runners(&mut programs.iter().chain(&network))?;
    let refs: Vec<&Runner> = second.iter().collect();
    // Measured twice (issue 13): a kernel replaces the network only when its interval lies
    // below the network's in both runs.
    let figures = latency::measure_all(meter.as_mut(), &refs, &inputs, &full)?;
    let again = latency::measure_all(meter.as_mut(), &refs, &inputs, &full)?;
    let network_cycles = network
        .as_ref()
        .and_then(|_| figures.last().cloned().flatten())
        .map(|m| m.cycles);
    let network_intervals = network.as_ref().and_then(|_| {
        let a = figures.last().cloned().flatten()?;
        let b = again.last().cloned().flatten()?;
        Some([a.interval, b.interval])
    });
    let mut ranked: Vec<(Vec<crate::isa::Insn>, LoggedLatency)> = programs
        .iter()
        .chain(&network)
        .zip(figures.iter().zip(&again))
        .enumerate()
        .filter_map(|(i, (p, (m, m2)))| {
            let baseline = i == programs.len();
            let mut l = logged(
                game.uarch(),
                p,
                m.as_ref()?,
                network_cycles,
                finalists,
                baseline,
            );
            l.second_run = m2.as_ref().map(|m2| crate::log::SecondRun {
                cycles: m2.cycles,
                interval: m2.interval,
                network_intervals,
            });
            Some((p.clone(), l))
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
    // interval lies below the network's in both runs; otherwise the network is tried first.
    if let Some(b) = ranked.iter().position(|r| r.1.baseline) {
        let clearly_faster = |r: &LoggedLatency| {
            let (Some(second), Some([n1, n2])) = (&r.second_run, network_intervals) else {
                return false;
            };
            r.interval.1 < n1.0 && second.interval.1 < n2.0
        };
        if !ranked
            .last()
            .is_some_and(|r| !r.1.baseline && clearly_faster(&r.1))
        {
            let mut net = ranked.remove(b);
            net.1.runner_up = ranked.last().map(|(p, l)| crate::log::RunnerUp {
                program_att: p.iter().map(|i| i.att_as(task.element)).collect(),
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
    uarch: crate::latency::model::Uarch,
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
        model_cycles: crate::latency::model::program_state_on(uarch, p).cycles(),
        finalists,
        baseline,
        runner_up: None,
        second_run: None,
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
