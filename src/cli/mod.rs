//! The command line: `superopt search`, `verify`, `bench`, `export`, `train`, `tasks`. Thin
//! wrappers over the library; every error is one line on stderr.
//!
//! Exit codes: 0 success (a verified kernel); 1 no verified kernel (search found none,
//! `verify` rejected the kernel, `export` refused an unverified kernel or a written file
//! failed its check after writing); 2 bad input (unknown task, malformed file, bad budget,
//! unparsable assembly, I/O).

pub mod bench;
pub mod export;
pub mod replay;
pub mod search;

use crate::asm::{self, Syntax};
use crate::oracle::{self, NativeConfig, Status};
use crate::task::{parse_budget, Task};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The most random inputs `verify --random` runs: ten million take a few seconds; more
/// would let a mistyped count run for hours.
pub const MAX_RANDOM: u64 = 10_000_000;

/// superopt: discovers short x86-64 kernels by tree search over instructions, and proves
/// them correct.
#[derive(Parser, Debug)]
#[command(name = "superopt", version, about)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand to run.
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Search for a short kernel for a task and verify it.
    Search {
        /// A built-in task (sort3, sort4, sort5) or a path to a task .toml file.
        #[arg(required_unless_present = "resume")]
        task: Option<String>,
        /// Wall-clock budget: 60s, 10m, 1h, at most 10years (default: the task's).
        #[arg(long)]
        budget: Option<String>,
        /// Seed of MCTS's prior noise, at most 18446744073709551 (worker i seeds its stream
        /// with 1000 x seed + i); with --threads 1 the search is deterministic for a given
        /// seed (up to the budget's cut-off time). A* is deterministic and ignores it.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Search strategy (default: mcts, or lns for a task searched on its 0-1 test vectors,
        /// as every task past 5 elements is).
        #[arg(long, value_enum)]
        strategy: Option<search::Strategy>,
        /// Stop as soon as a kernel of at most this many instructions is found.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        target: Option<u32>,
        /// Priors and leaf values for MCTS without a net (default: the shipped net for the
        /// task when nets/ has one, else heuristic).
        #[arg(long, value_enum, conflicts_with = "net")]
        evaluator: Option<search::EvaluatorKind>,
        /// Guide MCTS with a policy/value network checkpoint (nets/NAME.safetensors with its
        /// NAME.json), or `none` for uniform priors. Default: nets/<task>.safetensors when it
        /// exists. A net that cannot serve the task is refused.
        #[arg(long, value_name = "PATH|none")]
        net: Option<String>,
        /// Where a net-guided search takes leaf values from (default: estimate).
        #[arg(long, value_enum)]
        net_value: Option<crate::net::ValueSource>,
        /// Where a net-guided search takes priors from: the net's times the heuristic's
        /// (default), or the net's alone.
        #[arg(long, value_enum)]
        net_prior: Option<search::NetPrior>,
        /// What to minimise: program length, or latency (the static model during the search,
        /// then the real meter on the finalists).
        #[arg(long, value_enum, default_value_t = crate::game::Objective::Length)]
        objective: crate::game::Objective,
        /// Under --objective latency, the meter that ranks the finalists (default: perf where
        /// hardware cycle counters work, else tsc; model keeps the model's ranking).
        #[arg(long, value_enum)]
        meter: Option<crate::latency::MeterKind>,
        /// The latency model's table, for --objective latency and the model figures in the
        /// log (default: SUPEROPT_UARCH when set, else golden-cove on an Intel CPU and zen4
        /// on any other).
        #[arg(long, value_enum)]
        uarch: Option<crate::latency::model::Uarch>,
        /// Where a guiding net runs: cpu, or cuda (GPU 0; only in a build with `--features
        /// cuda`).
        #[arg(long, value_enum)]
        device: Option<crate::net::DeviceKind>,
        /// MCTS leaves evaluated together in one call, with virtual visits (default 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        leaf_batch: Option<u32>,
        /// Print one JSON object on stdout instead of the human report.
        #[arg(long)]
        json: bool,
        /// Folder for search logs.
        #[arg(long, default_value = "search-logs")]
        log_dir: PathBuf,
        /// Seconds between checkpoints of the search log while it runs (0: only at the start
        /// and the end). A killed search loses at most one interval.
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        checkpoint: String,
        /// Most nodes of the merged MCTS tree written to the log (0: none); nodes with few
        /// visits are dropped first.
        #[arg(long, default_value_t = search::TREE_NODES)]
        tree_nodes: usize,
        /// Start without the classic sorting network as the incumbent, to measure what the
        /// search finds by itself (the benchmarks of time to a length use it).
        #[arg(long)]
        no_incumbent: bool,
        /// Continue the search saved in this log (its task, settings, best kernel, tree,
        /// counts and random streams), writing the same log. --budget is the time to run
        /// now (default: what is left of the saved budget); the search's settings come from
        /// the log and cannot be changed.
        #[arg(long, value_name = "LOG", conflicts_with_all = ["task", "seed", "threads", "strategy", "target", "evaluator", "net", "net_value", "objective", "meter", "uarch", "leaf_batch", "log_dir", "checkpoint", "tree_nodes", "device", "net_prior", "no_incumbent"])]
        resume: Option<PathBuf>,
    },
    /// Check a kernel written elsewhere (one instruction per line, pointer in rdi, no ret).
    Verify {
        /// A built-in task or a task .toml file.
        task: String,
        /// The kernel's assembly file.
        file: PathBuf,
        /// Assembly syntax of the file.
        #[arg(long, default_value = "att")]
        syntax: String,
        /// Exit 0 for a kernel that is tested on the CPU but outside the game's ISA, so not
        /// proven, or proved on the emulator but not run (it needs CPU features this CPU
        /// lacks).
        #[arg(long)]
        allow_unproven: bool,
        /// Random inputs for the native run (at most 10000000, a few seconds).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(..=MAX_RANDOM))]
        random: u64,
    },
    /// Train a policy/value network by self-play and write nets/NAME.{safetensors,json,csv,png}.
    Train {
        /// Built-in tasks or task .toml files; episodes and minibatches go round them in turn.
        #[arg(required = true)]
        tasks: Vec<String>,
        /// Wall-clock budget of the self-play: 60s, 30m, 1h.
        #[arg(long, default_value = "10m")]
        budget: String,
        /// Name of the checkpoint: nets/NAME.safetensors, .json, .csv, .png (default: the
        /// task names joined by '-').
        #[arg(long)]
        out: Option<String>,
        /// Start from this checkpoint instead of fresh weights.
        #[arg(long)]
        init: Option<PathBuf>,
        /// Seed of the initial weights, the episodes and the minibatches.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Hidden width of a fresh net (default 64).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
        hidden: Option<u32>,
        /// Largest array length a fresh net serves (default: the largest n of the tasks).
        #[arg(long)]
        n_max: Option<usize>,
        /// Episodes played in parallel per round (default: all cores).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        actors: Option<u32>,
        /// MCTS simulations per committed move in self-play.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        simulations: u32,
        /// Leaf values of the self-play searches.
        #[arg(long, value_enum, default_value_t = crate::net::ValueSource::Estimate)]
        value: crate::net::ValueSource,
        /// Temperature of the policy targets, in instructions.
        #[arg(long, default_value_t = 1.0)]
        target_temperature: f32,
        /// AdamW learning rate (3e-4: at 1e-3 a 12-minute sort4 run got worse, BENCHMARKS.md).
        #[arg(long, default_value_t = 3e-4)]
        lr: f64,
        /// Search budget per task of the evaluation written into the checkpoint's metadata
        /// (0s skips it).
        #[arg(long, default_value = "30s")]
        eval_budget: String,
        /// Folder for checkpoints.
        #[arg(long, default_value = "nets")]
        nets_dir: PathBuf,
        /// Replace an existing checkpoint of the same name (without it, train refuses).
        #[arg(long)]
        overwrite: bool,
        /// Where the net trains: cpu, or cuda (GPU 0; only in a build with `--features
        /// cuda`).
        #[arg(long, value_enum, default_value_t = crate::net::DeviceKind::Cpu)]
        device: crate::net::DeviceKind,
    },
    /// Time kernels side by side on the same random inputs: the best found in the search
    /// logs, the classic sorting network, compiled Rust baselines and any kernel files;
    /// writes a table, a CSV and a PNG bar chart.
    Bench {
        /// A built-in task or a task .toml file.
        task: String,
        /// Kernel files to add (one instruction per line, pointer in rdi, no ret).
        files: Vec<PathBuf>,
        /// Assembly syntax of the files.
        #[arg(long, default_value = "att")]
        syntax: String,
        /// The meter (default: perf where hardware cycle counters work, else tsc).
        #[arg(long, value_enum)]
        meter: Option<crate::latency::MeterKind>,
        /// Timed passes per subject.
        #[arg(long, default_value_t = 1000)]
        samples: usize,
        /// Arrays (calls) per pass.
        #[arg(long, default_value_t = 1000)]
        inputs: usize,
        /// The quantile reported (AlphaDev: the 5th percentile).
        #[arg(long, default_value_t = 0.05)]
        quantile: f64,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Rounds over the subjects (the interval covers the spread between rounds).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Whole measurements, 1 or 2: with 2 (the default), a kernel is called faster or
        /// slower than the network only when its 95% interval lies below or above the
        /// network's in both runs.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
        runs: u8,
        /// The latency model's table for the model column and `--meter model` (default:
        /// SUPEROPT_UARCH when set, else golden-cove on an Intel CPU and zen4 on any other).
        #[arg(long, value_enum)]
        uarch: Option<crate::latency::model::Uarch>,
        /// Folder of search logs to take kernels from.
        #[arg(long, default_value = "search-logs")]
        log_dir: PathBuf,
        /// CSV output (default: bench-<task>-<meter>.csv; bench-<task>-model-<uarch>.csv for the
        /// model meter).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// PNG bar chart (default: as the CSV's default name, ending in .png; the name must end
        /// in .png).
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// Show how a saved search found its kernel: the principal variation with visit counts,
    /// values and alternatives, statistics by depth, the timeline; optionally a Graphviz DOT
    /// of the top of the tree and a PNG of best length against time.
    Replay {
        /// A search log (search-logs/<task>/....json).
        log: PathBuf,
        /// Alternatives shown per depth (and children per node in --dot).
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// Write the top of the tree as Graphviz DOT (render with `dot -Tsvg`).
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// Levels of the tree in --dot.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
        dot_depth: u16,
        /// Write best length against time as a PNG (the name must end in .png).
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
    },
    /// Write a verified kernel as a standalone assembly file (gas, intel), a C header and
    /// assembly file (c) or a Rust module (rust), and verify the written file again; or, with
    /// --library DIR, a Rust crate of the shortest verified kernel per task in the logs.
    Export {
        /// A search log (.json: its best kernel and task) or an assembly file (.s, .S, .asm:
        /// needs --task); with --library, one or more tasks.
        #[arg(required = true, value_name = "INPUT|TASK")]
        inputs: Vec<String>,
        /// Output format: NAME.S (gas: AT&T, intel), NAME.S and NAME.h (c), NAME.rs (rust).
        #[arg(long, value_enum, default_value_t = crate::export::Format::Gas, conflicts_with = "library")]
        format: crate::export::Format,
        /// Function name, a C and Rust identifier (default: the task's name).
        #[arg(long, conflicts_with = "library")]
        name: Option<String>,
        /// Output folder (created if needed).
        #[arg(short = 'o', long, default_value = ".", conflicts_with = "library")]
        out_dir: PathBuf,
        /// The task of an assembly file; for a log, checked against the log's task.
        #[arg(long, conflicts_with = "library")]
        task: Option<String>,
        /// Assembly syntax of an assembly file: att (the default) or intel. Not for a search
        /// log (choose the output's syntax with --format gas|intel).
        #[arg(long, conflicts_with = "library")]
        syntax: Option<String>,
        /// Write a Rust crate at DIR with the shortest verified kernel of each task in the
        /// search logs.
        #[arg(long, value_name = "DIR")]
        library: Option<PathBuf>,
        /// With --library: the folder of search logs (<dir>/<task>/ and <dir>/examples/;
        /// default: search-logs).
        #[arg(long, value_name = "DIR")]
        log_dir: Option<PathBuf>,
        /// With --library: the crate's name (default: DIR's last component, sanitised).
        #[arg(long)]
        crate_name: Option<String>,
        /// With --library: which kernel per task, the shortest (length, the default) or the
        /// one the most recent `search --objective latency` chose by measurement (latency).
        #[arg(long, value_enum)]
        objective: Option<crate::game::Objective>,
        /// Replace files that an earlier export wrote (with --library: write into a folder
        /// that is not empty). Without it, export refuses to replace anything; files it did
        /// not write, and its own inputs, are never replaced.
        #[arg(long)]
        overwrite: bool,
    },
    /// List the tasks with their reference lengths.
    Tasks,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let stdout = std::io::stdout();
    match dispatch(cli, &mut stdout.lock()) {
        Ok(code) => code,
        Err(e) => {
            // One line, whatever a path or message holds.
            let text = e.to_string().replace('\n', "\\n").replace('\r', "\\r");
            eprintln!("error: {text}");
            match e {
                crate::Error::NotVerified(_) => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}

fn dispatch(cli: Cli, w: &mut dyn Write) -> crate::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            log,
            top,
            dot,
            dot_depth,
            plot,
        } => {
            let opts = replay::ReplayOptions {
                top,
                dot,
                dot_depth: dot_depth as usize,
                plot,
            };
            replay::replay(&log, &opts, w)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            inputs,
            format,
            name,
            out_dir,
            task,
            syntax,
            library,
            log_dir,
            crate_name,
            objective,
            overwrite,
        } => {
            // Checked here: clap skips `requires` when a conflicting option is present.
            if library.is_none() {
                for (flag, given) in [
                    ("--log-dir", log_dir.is_some()),
                    ("--crate-name", crate_name.is_some()),
                    ("--objective", objective.is_some()),
                ] {
                    if given {
                        return Err(crate::Error::Runtime(format!(
                            "{flag} goes with --library DIR"
                        )));
                    }
                }
            }
            let args = export::ExportArgs {
                inputs,
                format,
                name,
                out_dir,
                task,
                syntax,
                library,
                log_dir: log_dir.unwrap_or_else(|| PathBuf::from("search-logs")),
                objective: objective.unwrap_or_default(),
                crate_name,
                overwrite,
            };
            export::run(args, w)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tasks => {
            writeln!(
                w,
                "{:<16} {:>3} {:>7} {:>6} {:>8} {:>9} {:>8}  source",
                "task", "n", "element", "vector", "network", "alphadev", "budget"
            )
            .map_err(stdout_err)?;
            for t in Task::builtins() {
                let f = |x: Option<usize>| x.map_or("-".to_string(), |v| v.to_string());
                writeln!(
                    w,
                    "{:<16} {:>3} {:>7} {:>6} {:>8} {:>9} {:>8}  {}",
                    t.name,
                    t.n,
                    t.element.name(),
                    t.vector.map_or("-", |v| v.name()),
                    f(t.reference.network),
                    f(t.reference.alphadev),
                    humantime::format_duration(t.default_budget).to_string(),
                    t.source
                )
                .map_err(stdout_err)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            task,
            files,
            syntax,
            meter,
            uarch,
            samples,
            inputs,
            quantile,
            seed,
            rounds,
            runs,
            log_dir,
            csv,
            png,
        } => {
            let task_arg = task;
            let task = Task::load(&task_arg)?;
            let syntax: Syntax = syntax
                .parse()
                .map_err(|e: String| crate::Error::Runtime(e))?;
            let read = bench::inputs(&task, &task_arg, &files, &log_dir);
            let opts = bench::BenchOptions {
                files,
                syntax,
                meter,
                sampling: crate::latency::SampleConfig {
                    samples,
                    inputs,
                    quantile,
                    seed,
                    rounds,
                    uarch: uarch_or_current(uarch)?,
                    ..crate::latency::SampleConfig::default()
                },
                log_dir,
                runs: runs as usize,
            };
            opts.sampling.check()?;
            // The outputs are named after the meter that will run (and the model's table, for
            // the model meter); check them before timing.
            let kind = crate::latency::resolve(meter).0;
            let stem = if kind == crate::latency::MeterKind::Model {
                format!("bench-{}-model-{}", task.name, opts.sampling.uarch.id())
            } else {
                format!("bench-{}-{}", task.name, kind.name())
            };
            let csv = csv.unwrap_or_else(|| PathBuf::from(format!("{stem}.csv")));
            let png = png.unwrap_or_else(|| PathBuf::from(format!("{stem}.png")));
            bench::check_outputs(&csv, &png, &read)?;
            let report = bench::run_bench(&task, &opts)?;
            bench::write_csv(&report, &csv)?;
            write!(w, "{}", bench::format_report(&report)).map_err(stdout_err)?;
            // The table and CSV are already out if only the chart fails (e.g. no font).
            let chart = bench::write_png(&report, &png);
            writeln!(w, "wrote {}", csv.display()).map_err(stdout_err)?;
            chart?;
            writeln!(w, "wrote {}", png.display()).map_err(stdout_err)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train {
            tasks,
            budget,
            out,
            init,
            seed,
            hidden,
            n_max,
            actors,
            simulations,
            value,
            target_temperature,
            lr,
            eval_budget,
            nets_dir,
            overwrite,
            device,
        } => {
            // Refused before anything else, not after loading tasks and nets.
            let device = device.device()?;
            let tasks: Vec<Task> = tasks
                .iter()
                .map(|t| Task::load(t))
                .collect::<crate::Result<_>>()?;
            let budget = parse_budget(&budget)?;
            let eval_budget = if eval_budget.trim() == "0s" || eval_budget.trim() == "0" {
                std::time::Duration::ZERO
            } else {
                parse_budget(&eval_budget)?
            };
            if !(lr.is_finite() && lr > 0.0 && lr < 1.0) {
                return Err(crate::Error::Runtime(format!(
                    "--lr must be in (0, 1), not {lr}"
                )));
            }
            if !(target_temperature.is_finite() && target_temperature > 0.0) {
                return Err(crate::Error::Runtime(format!(
                    "--target-temperature must be a positive number of instructions, not {target_temperature}"
                )));
            }
            let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find_map(|(i, n)| names[..i].contains(n).then_some(n))
            {
                return Err(crate::Error::Runtime(format!("task {dup} is named twice")));
            }
            let out = out.unwrap_or_else(|| names.join("-"));
            if out.is_empty()
                || out.starts_with('.')
                || !out
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return Err(crate::Error::Runtime(format!(
                    "--out '{out}': use letters, digits, '_', '-' and '.', not starting with '.'"
                )));
            }
            let games: Vec<crate::game::SortGame> =
                tasks.iter().map(crate::game::SortGame::new).collect();
            let largest = tasks.iter().map(|t| t.n).max().unwrap_or(2);
            if n_max.is_some_and(|m| m < largest) {
                return Err(crate::Error::Runtime(format!(
                    "--n-max {} is smaller than the largest task's n ({largest})",
                    n_max.unwrap_or(0)
                )));
            }
            let mut net = match &init {
                Some(p) => {
                    if hidden.is_some() || n_max.is_some() {
                        return Err(crate::Error::Runtime(
                            "--hidden and --n-max shape a fresh net; --init keeps the checkpoint's"
                                .into(),
                        ));
                    }
                    let stem = crate::net::checkpoint_stem(p);
                    let mut net = crate::net::PolicyValueNet::load(&stem)?;
                    for g in &games {
                        net.check_task(g).map_err(|message| crate::Error::Log {
                            path: crate::net::with_suffix(&stem, "json"),
                            message,
                        })?;
                    }
                    // The old evaluation describes the old weights.
                    net.meta_mut().evaluation.clear();
                    net
                }
                None => {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    crate::net::PolicyValueNet::new(
                        &refs,
                        n_max.unwrap_or(largest),
                        hidden.unwrap_or(64) as usize,
                        seed,
                    )?
                }
            };
            if !device.is_cpu() {
                net = net.to_device(&device)?;
            }
            let stem = nets_dir.join(&out);
            let weights = crate::net::with_suffix(&stem, "safetensors");
            let same_as_init = init
                .as_ref()
                .is_some_and(|p| crate::net::checkpoint_stem(p) == stem);
            if !overwrite
                && !same_as_init
                && (weights.exists() || crate::net::with_suffix(&stem, "json").exists())
            {
                return Err(crate::Error::Runtime(format!(
                    "{} exists; pick another --out, or pass --overwrite to replace it",
                    weights.display()
                )));
            }
            // Fail before training, not after, if the checkpoint cannot be written.
            std::fs::create_dir_all(&nets_dir).map_err(|e| crate::Error::io(&nets_dir, e))?;
            tempfile::NamedTempFile::new_in(&nets_dir)
                .map_err(|e| crate::Error::io(&nets_dir, e))?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // Ctrl-C ends the running episodes and training; the checkpoint is still written.
            // A second Ctrl-C exits at once.
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
            });
            let cfg = crate::net::train::TrainConfig {
                budget,
                seed,
                simulations,
                value_source: value,
                target_temperature,
                lr,
                actors: actors.map_or_else(
                    || std::thread::available_parallelism().map_or(1, |n| n.get()),
                    |a| a as usize,
                ),
                ..Default::default()
            };
            let bar = indicatif::ProgressBar::new(budget.as_millis() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {msg}")
                    .expect("a valid progress template")
                    .progress_chars("=> "),
            );
            let mut last_save = std::time::Instant::now();
            let mut save_error = None;
            let mut so_far = Vec::new();
            let csv = crate::net::with_suffix(&stem, "csv");
            let curve = crate::net::train::train(&games, &mut net, &cfg, &stop, |p, net| {
                so_far.push(p.clone());
                let best: Vec<String> = names
                    .iter()
                    .zip(&p.best_length)
                    .map(|(t, b)| {
                        format!("{t} {}", if *b == 0 { "-".into() } else { b.to_string() })
                    })
                    .collect();
                bar.set_position((p.elapsed_s * 1000.0) as u64);
                bar.set_message(format!(
                    "episode {}  step {}  policy loss {:.3}  value loss {:.4}  best {}  {:.1} games/s",
                    p.episode, p.step, p.policy_loss, p.value_loss, best.join(", "), p.games_per_s
                ));
                // A checkpoint every minute, so that a killed run keeps most of its work.
                if last_save.elapsed() >= std::time::Duration::from_secs(60) {
                    last_save = std::time::Instant::now();
                    if let Err(e) = net
                        .save(&stem)
                        .and_then(|()| crate::net::train::write_curve_csv(&so_far, &names, &csv))
                    {
                        save_error = Some(e);
                    }
                }
            })?;
            bar.finish_and_clear();
            if let Some(e) = save_error {
                return Err(e);
            }
            if curve.last().map_or(0, |p| p.episode) == 0 {
                return Err(crate::Error::Runtime(format!(
                    "no self-play episode finished within the budget; nothing written to {} (give a longer --budget)",
                    weights.display()
                )));
            }
            if !eval_budget.is_zero() && !stop.load(Ordering::Relaxed) {
                let mut evals = Vec::new();
                for g in &games {
                    let t = g.task();
                    let target = t
                        .reference
                        .alphadev
                        .or(t.reference.network)
                        .map_or(1, |l| l as u32);
                    evals.push(crate::net::train::evaluate(
                        g,
                        &net,
                        target,
                        eval_budget,
                        u64::MAX,
                    ));
                }
                net.meta_mut().evaluation = evals;
            }
            net.meta_mut().date = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .expect("RFC 3339 formatting of the current time");
            net.save(&stem)?;
            crate::net::train::write_curve_csv(&curve, &names, &csv)?;
            let png = crate::net::with_suffix(&stem, "png");
            let png_note = match crate::net::train::write_curve_png(&curve, &names, &png) {
                Ok(()) => ", .png".to_string(),
                Err(e) => {
                    eprintln!("warning: no learning-curve PNG: {e}");
                    String::new()
                }
            };
            let last = curve.last();
            writeln!(
                w,
                "trained {} for {} episodes, {} steps in {:.0} s; wrote {}.safetensors, .json, .csv{png_note}",
                names.join(" "),
                last.map_or(0, |p| p.episode),
                last.map_or(0, |p| p.step),
                last.map_or(0.0, |p| p.elapsed_s),
                stem.display()
            )
            .map_err(stdout_err)?;
            for (i, t) in names.iter().enumerate() {
                let seen = last
                    .and_then(|p| p.best_length.get(i))
                    .copied()
                    .unwrap_or(0);
                let eval = net.meta().evaluation.iter().find(|e| &e.task == t);
                writeln!(
                    w,
                    "  {t}: best kernel seen in self-play {}{}",
                    if seen == 0 { "none".into() } else { seen.to_string() },
                    eval.map_or(String::new(), |e| format!(
                        "; net-guided search for {} instructions: best {} after {} programs in {:.1} s",
                        e.target,
                        if e.best == 0 { "none".into() } else { e.best.to_string() },
                        e.programs,
                        e.seconds
                    ))
                )
                .map_err(stdout_err)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            task,
            file,
            syntax,
            allow_unproven,
            random,
        } => {
            let task = Task::load(&task)?;
            let syntax: Syntax = syntax
                .parse()
                .map_err(|e: String| crate::Error::Runtime(e))?;
            let kernel = asm::parse_file(&file, syntax)?;
            let verdict = oracle::verify_kernel(
                &task,
                &kernel,
                &NativeConfig {
                    random: random as usize,
                    ..NativeConfig::default()
                },
            )?;
            let name = file.display();
            match verdict.status {
                Status::Verified => {
                    writeln!(
                        w,
                        "verified: {name} sorts {} {} for all inputs ({} instructions)",
                        task.n, task.element, verdict.length
                    )
                    .map_err(stdout_err)?;
                    for c in &verdict.checks {
                        writeln!(w, "  - {c}").map_err(stdout_err)?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Status::TestedNotProven => {
                    writeln!(
                        w,
                        "tested, not proven: {name} ({} instructions)",
                        verdict.length
                    )
                    .map_err(stdout_err)?;
                    writeln!(
                        w,
                        "  why not proven: {}",
                        verdict.reason.unwrap_or_default()
                    )
                    .map_err(stdout_err)?;
                    for c in &verdict.checks {
                        writeln!(w, "  - {c}").map_err(stdout_err)?;
                    }
                    if !allow_unproven {
                        eprintln!("not verified (pass --allow-unproven to accept a kernel tested on the CPU only)");
                    }
                    Ok(if allow_unproven {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Status::ProvedNotRun => {
                    // Proved on the emulator, not run: never called verified.
                    writeln!(
                        w,
                        "{}: {name} sorts {} {} for all inputs on the emulator ({} instructions)",
                        verdict.reason.as_deref().unwrap_or("proved, not run"),
                        task.n,
                        task.element,
                        verdict.length
                    )
                    .map_err(stdout_err)?;
                    for c in &verdict.checks {
                        writeln!(w, "  - {c}").map_err(stdout_err)?;
                    }
                    if !allow_unproven {
                        eprintln!("not verified: the native stage needs a CPU with those features (pass --allow-unproven to accept a kernel proved but not run)");
                    }
                    Ok(if allow_unproven {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Status::Failed => {
                    writeln!(
                        w,
                        "rejected: {name}: {}",
                        verdict.reason.unwrap_or_default()
                    )
                    .map_err(stdout_err)?;
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Search {
            task,
            budget,
            seed,
            threads,
            strategy,
            target,
            evaluator,
            net,
            net_value,
            net_prior,
            objective,
            meter,
            uarch,
            device,
            leaf_batch,
            json,
            log_dir,
            checkpoint,
            tree_nodes,
            no_incumbent,
            resume,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // Ctrl-C stops the search; the best kernel so far is verified, printed and logged.
            let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
            if let Some(path) = resume {
                let budget = budget.as_deref().map(parse_budget).transpose()?;
                let (task, opts) = search::resume_options(&path, budget, !json)?;
                let out = search::run_search(&task, &opts, stop)?;
                return finish_search(w, &task, &out, json);
            }
            let Some(task) = task else {
                return Err(crate::Error::Runtime(
                    "search needs a task (or --resume LOG)".into(),
                ));
            };
            let task = Task::load(&task)?;
            let budget = match budget {
                Some(b) => parse_budget(&b)?,
                None => task.default_budget,
            };
            let strategy = strategy.unwrap_or(if task.zero_one_search {
                search::Strategy::Lns
            } else {
                search::Strategy::Mcts
            });
            let uses = match strategy {
                search::Strategy::Lns => "LNS always uses",
                _ => "A* always uses",
            };
            let checkpoint_every = match checkpoint.trim() {
                "0" | "0s" => None,
                c => {
                    let why = match parse_budget(c) {
                        Ok(d) if d >= std::time::Duration::from_secs(1) => Ok(d),
                        Err(crate::Error::BudgetTooLong(_)) => {
                            Err(format!("the maximum is {}", crate::task::MAX_BUDGET_TEXT))
                        }
                        _ => Err(
                            "expected a duration of at least 1s, such as 10s or 1m, or 0 for none"
                                .to_string(),
                        ),
                    };
                    Some(why.map_err(|why| {
                        crate::Error::Runtime(format!("invalid --checkpoint '{c}': {why}"))
                    })?)
                }
            };
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if !(1..=search::MAX_THREADS).contains(&threads) {
                return Err(crate::Error::Runtime(format!(
                    "--threads must be between 1 and {}",
                    search::MAX_THREADS
                )));
            }
            if strategy != search::Strategy::Mcts && (net.is_some() || evaluator.is_some()) {
                return Err(crate::Error::Runtime(format!(
                    "--net and --evaluator guide MCTS; {uses} the game's estimate"
                )));
            }
            if strategy != search::Strategy::Mcts
                && (net_prior.is_some() || net_value.is_some() || device.is_some())
            {
                return Err(crate::Error::Runtime(format!(
                    "--net-prior, --net-value and --device go with a net guiding MCTS; {uses} the game's estimate"
                )));
            }
            let guide = match strategy {
                search::Strategy::Mcts => search::resolve_guide(
                    &task,
                    evaluator,
                    net.as_deref(),
                    net_value.unwrap_or_default(),
                    net_prior.unwrap_or_default(),
                    objective,
                ),
                search::Strategy::Astar | search::Strategy::Lns => search::Guide::Heuristic,
            };
            if net_value.is_some() && !matches!(guide, search::Guide::Net { .. }) {
                return Err(crate::Error::Runtime(format!(
                    "--net-value needs a net; this search is guided by {}, which takes values from the game's estimate",
                    guide.describe()
                )));
            }
            if net_prior.is_some() && !matches!(guide, search::Guide::Net { .. }) {
                return Err(crate::Error::Runtime(format!(
                    "--net-prior needs a net; this search is guided by {}",
                    guide.describe()
                )));
            }
            if device.is_some() && !matches!(guide, search::Guide::Net { .. }) {
                return Err(crate::Error::Runtime(format!(
                    "--device places the guiding net; this search is guided by {}, which has none",
                    guide.describe()
                )));
            }
            // Refused before searching (a build without CUDA, no GPU).
            if let Some(d) = device {
                d.device()?;
            }
            if objective == crate::game::Objective::Latency && target.is_some() {
                return Err(crate::Error::Runtime(
                    "--target is a length in instructions; it cannot be used with --objective latency".into(),
                ));
            }
            if meter.is_some() && objective != crate::game::Objective::Latency {
                return Err(crate::Error::Runtime(
                    "--meter ranks the finalists of --objective latency; add --objective latency or use `superopt bench`".into(),
                ));
            }
            if meter == Some(crate::latency::MeterKind::Perf) {
                // Refuse before searching, not after the budget is spent.
                crate::latency::hardware_counters().map_err(crate::Error::Runtime)?;
            }
            let opts = search::SearchOptions {
                budget,
                seed,
                threads,
                strategy,
                guide,
                leaf_batch,
                target: target.map(|t| t as usize),
                objective,
                meter,
                uarch: uarch_or_current(uarch)?,
                log_dir,
                progress: !json,
                checkpoint_every,
                tree_nodes,
                incumbent: !no_incumbent,
                device: device.unwrap_or_default(),
                resume: None,
            };
            let out = search::run_search(&task, &opts, stop)?;
            finish_search(w, &task, &out, json)
        }
    }
}

/// `--uarch` when given, else [`crate::latency::model::Uarch::current`]. Errors: a
/// `SUPEROPT_UARCH` that names no table.
fn uarch_or_current(
    uarch: Option<crate::latency::model::Uarch>,
) -> crate::Result<crate::latency::model::Uarch> {
    match uarch {
        Some(u) => Ok(u),
        None => crate::latency::model::Uarch::current().map_err(crate::Error::Runtime),
    }
}

/// Prints a search's outcome and turns it into the exit code.
fn finish_search(
    w: &mut dyn Write,
    task: &Task,
    out: &search::SearchOutcome,
    json: bool,
) -> crate::Result<ExitCode> {
    print_search(w, task, out, json)?;
    if let Some(e) = &out.log_error {
        return Err(crate::Error::Runtime(format!(
            "the search log was not written: {e}"
        )));
    }
    Ok(if out.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_search(
    w: &mut dyn Write,
    task: &Task,
    out: &search::SearchOutcome,
    json: bool,
) -> crate::Result<()> {
    let log = &out.log;
    let best = log.best.as_ref();
    let found_at = log.timeline.last().map(|i| i.found_at_s);
    if json {
        let v = serde_json::json!({
            "task": task.name,
            "verified": out.verified,
            "not_run": best.and_then(|b| b.not_run.clone()),
            "length": best.map(|b| b.length),
            "program_att": best.map(|b| b.program_att.clone()).unwrap_or_default(),
            "program_intel": best.map(|b| b.program_intel.clone()).unwrap_or_default(),
            "elapsed_s": log.elapsed_s,
            "found_at_s": found_at,
            "programs_explored": log.programs_explored,
            "stop_reason": log.stop_reason,
            "checks": best.map(|b| b.checks.clone()).unwrap_or_default(),
            "evaluator": log.config.get("evaluator"),
            "objective": log.config.get("objective"),
            "uarch": log.config.get("uarch"),
            "latency": best.and_then(|b| b.latency.clone()),
            "runs": log.resume.as_ref().map_or(1, |r| r.runs.len()),
            "log": out.log_error.is_none().then(|| out.log_path.display().to_string()),
        });
        writeln!(
            w,
            "{}",
            serde_json::to_string(&v).expect("JSON output serialises")
        )
        .map_err(stdout_err)?;
        return Ok(());
    }
    match best {
        Some(b) if b.verified || b.not_run.is_some() => {
            let refs = match (task.reference.network, task.reference.alphadev) {
                (Some(n), Some(a)) => format!(" (classic network {n}, AlphaDev {a})"),
                (Some(n), None) => format!(" (classic network {n})"),
                (None, Some(a)) => format!(" (AlphaDev {a})"),
                (None, None) => String::new(),
            };
            // AlphaDev counts the body (its kernels are inline asm with clobbers); the function
            // adds a push and a pop for each callee-saved register the body uses.
            let saved = crate::asm::parse_str(
                &b.program_att.join("\n"),
                crate::asm::Syntax::Att,
                "<kernel>",
            )
            .map(|k| crate::oracle::callee_saved_used(&k.decoded, &task.saved_registers()))
            .unwrap_or_default();
            let body = if saved.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = saved
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                format!(
                    " in the body; {} as a function, with push and pop of {}",
                    b.length + 2 * saved.len(),
                    names.join(" ")
                )
            };
            match &b.not_run {
                None => writeln!(
                    w,
                    "{}: verified kernel, {} instructions{body}{refs}",
                    task.name, b.length
                ),
                Some(why) => writeln!(
                    w,
                    "{}: {why}: kernel of {} instructions{body}{refs}",
                    task.name, b.length
                ),
            }
            .map_err(stdout_err)?;
            if let Some(l) = b.latency.as_ref().filter(|l| l.baseline) {
                writeln!(
                    w,
                    "this is the classic network: no kernel the search found measured clearly faster (its 95% interval below the network's, in each of two runs)"
                )
                .map_err(stdout_err)?;
                if let Some(r) = &l.runner_up {
                    writeln!(
                        w,
                        "the search's fastest ({} instructions, in the log): {:.2} [{:.2}, {:.2}] {}/call, model {:.2} cycles",
                        r.program_att.len(),
                        r.cycles,
                        r.interval.0,
                        r.interval.1,
                        l.unit,
                        r.model_cycles
                    )
                    .map_err(stdout_err)?;
                }
            }
            writeln!(w, "{}", search_line(task, log, b)).map_err(stdout_err)?;
            if let Some(e) = log.config.get("evaluator").and_then(|e| e.as_str()) {
                writeln!(w, "guided by: {e}").map_err(stdout_err)?;
            }
            if let Some(runs) = log.resume.as_ref().map(|r| &r.runs).filter(|r| r.len() > 1) {
                let before: f64 = runs[..runs.len() - 1].iter().map(|r| r.elapsed_s).sum();
                writeln!(
                    w,
                    "resumed: run {} of this search, after {before:.1} s in earlier runs (times and counts above are totals)",
                    runs.len()
                )
                .map_err(stdout_err)?;
            }
            if let Some(l) = &b.latency {
                let net = match (l.network_cycles, l.ratio) {
                    (Some(c), Some(r)) => format!("; classic network {c:.2} (ratio {r:.3})"),
                    _ => String::new(),
                };
                let interval = if l.interval.0 == l.interval.1 {
                    String::new()
                } else {
                    format!(" [95% interval {:.2}, {:.2}]", l.interval.0, l.interval.1)
                };
                let table = log.uarch().name();
                writeln!(
                    w,
                    "latency: {:.2} {}/call{interval} ({} meter){net}; model {:.2} cycles ({table} table); fastest of {} finalists",
                    l.cycles, l.unit, l.meter, l.model_cycles, l.finalists
                )
                .map_err(stdout_err)?;
                if let (Some(r), false) = (&l.second_run, l.baseline) {
                    writeln!(
                        w,
                        "second run: {:.2} [{:.2}, {:.2}] {}/call{}",
                        r.cycles,
                        r.interval.0,
                        r.interval.1,
                        l.unit,
                        match r.network_intervals {
                            Some([a, b]) => format!(
                                "; its interval lies below the network's in both runs ([{:.2}, {:.2}], [{:.2}, {:.2}])",
                                a.0, a.1, b.0, b.1
                            ),
                            None => String::new(),
                        }
                    )
                    .map_err(stdout_err)?;
                }

            }
            writeln!(w, "\nAT&T (GNU as):").map_err(stdout_err)?;
            for l in &b.program_att {
                writeln!(w, "    {l}").map_err(stdout_err)?;
            }
            writeln!(w, "\nIntel:").map_err(stdout_err)?;
            for l in &b.program_intel {
                writeln!(w, "    {l}").map_err(stdout_err)?;
            }
            writeln!(w, "\nchecks:").map_err(stdout_err)?;
            for c in &b.checks {
                writeln!(w, "  - {c}").map_err(stdout_err)?;
            }
        }
        _ => writeln!(
            w,
            "{}: no verified kernel found ({} programs explored in {:.1} s; stopped: {}; guided by: {})",
            task.name,
            log.programs_explored,
            log.elapsed_s,
            stop_text(task, &log.stop_reason),
            log.config
                .get("evaluator")
                .and_then(|e| e.as_str())
                .unwrap_or("?")
        )
        .map_err(stdout_err)?,
    }
    if out.log_error.is_none() {
        writeln!(w, "\nlog: {}", out.log_path.display()).map_err(stdout_err)?;
    }
    Ok(())
}

/// The report's line on how the search went, for a verified best kernel `b` of `log`: when
/// it was found (`found after 0.02 s; 197 programs explored in 0.1 s; stopped: target`), or,
/// when the latency ranking kept the classic network, which no search found,
/// `kept the classic network; the search explored 5120 programs in 10.0 s; stopped: budget`.
fn search_line(task: &Task, log: &crate::log::SearchLog, b: &crate::log::LoggedKernel) -> String {
    let stop = stop_text(task, &log.stop_reason);
    if b.latency.as_ref().is_some_and(|l| l.baseline) {
        format!(
            "kept the classic network; the search explored {} programs in {:.1} s; stopped: {stop}",
            log.programs_explored, log.elapsed_s
        )
    } else {
        format!(
            "found after {:.2} s; {} programs explored in {:.1} s; stopped: {stop}",
            log.timeline.last().map_or(0.0, |i| i.found_at_s),
            log.programs_explored,
            log.elapsed_s,
        )
    }
}

/// A log's stop reason as the report gives it. An exhausted search on the 0-1 vectors
/// ([`Task::zero_one_search`]) says that this is no optimality proof: its no-op and
/// transposition rules compare states on the search vectors only (README, "The game").
fn stop_text(task: &Task, reason: &str) -> String {
    if reason == "exhausted" && task.zero_one_search {
        "exhausted (its space as seen on the 0-1 search vectors: not a proof that no shorter kernel exists)".into()
    } else {
        reason.to_string()
    }
}

/// Writing the report failed (a closed or full stdout): an I/O error naming stdout.
fn stdout_err(e: std::io::Error) -> crate::Error {
    crate::Error::io("stdout", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_network_is_not_reported_as_found() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("search-logs/examples/sort3-latency-seed0.json");
        let mut log = crate::log::SearchLog::read(&path).unwrap();
        let best = log.best.clone().unwrap();
        assert_eq!(
            search_line(&Task::load("sort3").unwrap(), &log, &best),
            "found after 0.40 s; 5857322 programs explored in 300.5 s; stopped: budget"
        );
        let mut kept = best;
        kept.latency.as_mut().unwrap().baseline = true;
        log.best = Some(kept.clone());
        assert_eq!(
            search_line(&Task::load("sort3").unwrap(), &log, &kept),
            "kept the classic network; the search explored 5857322 programs in 300.5 s; stopped: budget"
        );
        // The whole report: the network line, then that line, never "found after".
        let out = search::SearchOutcome {
            log,
            log_path: path,
            log_error: None,
            verified: true,
        };
        let mut text = Vec::new();
        print_search(&mut text, &Task::load("sort3").unwrap(), &out, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "this is the classic network: no kernel the search found measured clearly faster (its 95% interval below the network's, in each of two runs)");
        assert_eq!(lines[2], "kept the classic network; the search explored 5857322 programs in 300.5 s; stopped: budget");
        assert!(!text.contains("found after"), "{text}");
    }

    #[test]
    fn an_exhausted_zero_one_search_is_not_called_optimal() {
        let sort6 = Task::load("sort6").unwrap();
        assert_eq!(
            stop_text(&sort6, "exhausted"),
            "exhausted (its space as seen on the 0-1 search vectors: not a proof that no shorter kernel exists)"
        );
        assert_eq!(stop_text(&sort6, "budget"), "budget");
        assert_eq!(
            stop_text(&Task::load("sort5").unwrap(), "exhausted"),
            "exhausted"
        );
    }
}
