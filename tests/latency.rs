//! Latency: the meters, `superopt bench` and `search --objective latency`, through the CLI.
//! Figures from real meters vary, so these tests assert what must hold on any machine: which
//! meter ran and why, that every kernel sorts, exact model figures, and exact errors.

mod common;

use common::{stderr, stdout, superopt, write};
use std::path::Path;
use superopt::game::{without_dead_code, Objective, SortGame};
use superopt::latency::{hardware_counters, model};
use superopt::search::Environment;
use superopt::{Cond, Insn, Reg, Task};

/// Quick sampling for tests: 100 passes of 200 calls in 5 rounds.
const QUICK: [&str; 6] = ["--samples", "100", "--inputs", "200", "--rounds", "5"];

/// `superopt bench sort3` with [`QUICK`] sampling, its outputs and log folder (`logs/sort3/`,
/// empty unless a test fills it) in `dir`.
fn bench(dir: &Path, extra: &[&str]) -> std::process::Output {
    let csv = dir.join("b.csv").display().to_string();
    let png = dir.join("b.png").display().to_string();
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("sort3")).unwrap();
    let logs = logs.display().to_string();
    let mut args = vec![
        "bench",
        "sort3",
        "--csv",
        &csv,
        "--png",
        &png,
        "--log-dir",
        &logs,
    ];
    args.extend_from_slice(&QUICK);
    args.extend_from_slice(extra);
    superopt(&args)
}

#[test]
fn bench_names_its_meter_and_says_why_counters_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let o = bench(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    match hardware_counters() {
        Err(why) => {
            assert!(
                out.starts_with(&format!(
                    "{why}; using the tsc meter\nsort3: meter tsc: rdtscp"
                )),
                "{out}"
            );
            assert!(out.contains("ref-cycles/call [95% CI]"), "{out}");
        }
        Ok(()) => assert!(
            out.starts_with("sort3: meter perf: hardware core cycles"),
            "{out}"
        ),
    }
    for row in [
        "empty (chain overhead)",
        "network (3 comparators)",
        "rust sort_unstable",
        "rust min/max network",
    ] {
        assert!(out.contains(row), "no row {row} in\n{out}");
    }
    // The network row is the reference of the ratios.
    let network = out.lines().find(|l| l.starts_with("network")).unwrap();
    assert!(network.contains(" 1.000 "), "{network}");
    let csv = std::fs::read_to_string(dir.path().join("b.csv")).unwrap();
    assert!(csv.starts_with(
        "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status,throughput,throughput_low,throughput_high,throughput_ratio,cycles_2,low_2,high_2,throughput_2,throughput_low_2,throughput_high_2,latency_verdict,throughput_verdict\n"
    ));
    // Latency and throughput side by side, each against the network, over two runs.
    assert!(
        out.contains("throughput [95% CI]  t-ratio  vs ref"),
        "{out}"
    );
    assert!(out.contains("\nfigures: run 1 of 2; vs ref: faster (slower) when the 95% interval lies below (above) the reference's in both runs, else tie; both runs are in the CSV\n"), "{out}");
    // sort_unstable is several times slower than the network in both runs, and the network
    // is the reference (no verdict of its own).
    let unstable = out
        .lines()
        .find(|l| l.starts_with("rust sort_unstable"))
        .unwrap();
    assert_eq!(unstable.matches(" slower ").count(), 2, "{unstable}");
    assert!(network.contains(" 1.000       - "), "{network}");
    assert!(network.matches(" 1.000 ").count() == 2, "{network}");
    assert_eq!(csv.lines().count(), 1 + 5);
    let png = std::fs::read(dir.path().join("b.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn model_meter_gives_the_same_figures_twice() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = std::fs::read_to_string("tests/kernels/sort3_found17.s").unwrap();
    let file = write(dir.path(), "found17.s", &kernel);
    let run = || {
        let o = bench(
            dir.path(),
            &["--meter", "model", "--syntax", "intel", &file],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(dir.path().join("b.csv")).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    // Loads ready at 4; three compare-exchange layers of cmp + cmov; the stores: 11 cycles.
    let network = a.lines().find(|l| l.contains("network (3")).unwrap();
    assert!(
        network.contains(",11.0000,11.0000,11.0000,,1.0000,11.0000,"),
        "{network}"
    );
    // Its throughput: the cmov pipes (6 cmovs on 2) and dispatch (18 at 6 wide), 3 cycles;
    // the model runs once (it is deterministic), and the reference has no verdict.
    assert!(
        network.ends_with(",\"verified\",3.0000,3.0000,3.0000,1.0000,,,,,,,,"),
        "{network}"
    );
    let found = a.lines().find(|l| l.contains("found17.s")).unwrap();
    assert!(found.contains(",17,"), "{found}");
    assert!(found.contains(",\"verified\","), "{found}");
    // Compiled code has no instructions for the model.
    let rust = a
        .lines()
        .find(|l| l.contains("rust sort_unstable"))
        .unwrap();
    assert!(rust.contains(",,,,,,,"), "{rust}");
}

#[test]
fn perf_meter_without_counters_is_a_one_line_error() {
    let Err(why) = hardware_counters() else {
        return; // counters work here: nothing to refuse
    };
    let dir = tempfile::tempdir().unwrap();
    let o = bench(dir.path(), &["--meter", "perf"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), format!("error: {why}\n"));
    assert!(why.starts_with(
        "hardware cycle counters are unavailable: perf_event_open for CPU cycles failed: "
    ));
}

#[test]
fn bench_times_a_wrong_kernel_but_says_so_and_refuses_an_unsafe_one() {
    let dir = tempfile::tempdir().unwrap();
    // The network without its last compare-exchange: safe to run, not a sort.
    let wrong = "mov (%rdi), %eax\nmov 4(%rdi), %ecx\nmov 8(%rdi), %edx\n\
                 mov %eax, %esi\ncmp %ecx, %eax\ncmovg %ecx, %eax\ncmovg %esi, %ecx\n\
                 mov %ecx, %esi\ncmp %edx, %ecx\ncmovg %edx, %ecx\ncmovg %esi, %edx\n\
                 mov %eax, (%rdi)\nmov %ecx, 4(%rdi)\nmov %edx, 8(%rdi)\n";
    let file = write(dir.path(), "wrong.s", wrong);
    let o = bench(dir.path(), &["--meter", "model", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row = stdout(&o)
        .lines()
        .find(|l| l.starts_with("wrong.s"))
        .unwrap()
        .to_string();
    assert!(
        row.ends_with("FAILS: not sorted: [1,1,0] -> [1,0,1]"),
        "{row}"
    );

    let unsafe_ = write(dir.path(), "outside.s", "mov %eax, 12(%rdi)\n");
    let o = bench(dir.path(), &["--meter", "model", &unsafe_]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("error: {unsafe_}:1: cannot be timed: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn bad_bench_settings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--samples", "20"],
            "error: --samples must be at least 10 per round (100 for 10 rounds), got 20\n",
        ),
        (
            &["--quantile", "1.5"],
            "error: --quantile must be between 0 and 1 (exclusive), got 1.5\n",
        ),
        (
            &["--rounds", "1"],
            "error: --rounds must be between 3 and 100, got 1\n",
        ),
    ];
    let csv = dir.path().join("b.csv").display().to_string();
    for (args, want) in cases {
        let mut all = vec!["bench", "sort3", "--csv", &csv];
        all.extend_from_slice(args);
        let o = superopt(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), want);
    }
}

#[test]
fn latency_search_returns_a_verified_kernel_no_slower_than_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().display().to_string();
    let o = superopt(&[
        "search",
        "sort3",
        "--objective",
        "latency",
        "--budget",
        "3s",
        "--threads",
        "1",
        "--json",
        "--log-dir",
        &logs,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["objective"], "latency");
    let lat = &v["latency"];
    assert!(
        ["tsc", "perf"].contains(&lat["meter"].as_str().unwrap()),
        "{lat}"
    );
    // The network competes among the finalists, so the answer is never slower than it.
    assert!(lat["ratio"].as_f64().unwrap() <= 1.0, "{lat}");
    // Measured twice: a found kernel replaced the network only if its interval lies below
    // the network's in both runs.
    let second = &lat["second_run"];
    let nets = second["network_intervals"]
        .as_array()
        .expect("both runs of the network");
    if lat["baseline"] != true {
        assert!(
            lat["interval"][1].as_f64().unwrap() < nets[0][0].as_f64().unwrap(),
            "{lat}"
        );
        assert!(
            second["interval"][1].as_f64().unwrap() < nets[1][0].as_f64().unwrap(),
            "{lat}"
        );
    }
    // The model figure printed is the model's figure for the printed kernel.
    let att: Vec<String> = v["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let kernel =
        superopt::asm::parse_str(&att.join("\n"), superopt::asm::Syntax::Att, "<json>").unwrap();
    let program = kernel.to_game(3).unwrap();
    assert_eq!(
        lat["model_cycles"].as_f64().unwrap(),
        model::program_cycles(&program)
    );
    // And bench finds it in the log.
    let dir2 = tempfile::tempdir().unwrap();
    let csv = dir2.path().join("b.csv").display().to_string();
    let png = dir2.path().join("b.png").display().to_string();
    let o = superopt(&[
        "bench",
        "sort3",
        "--meter",
        "model",
        "--log-dir",
        &logs,
        "--csv",
        &csv,
        "--png",
        &png,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("superopt latency search"))
        .unwrap_or_else(|| panic!("no latency search row in\n{out}"));
    assert!(row.ends_with("verified"), "{row}");
}

#[test]
fn latency_options_are_refused_where_they_mean_nothing() {
    let o = superopt(&[
        "search",
        "sort3",
        "--objective",
        "latency",
        "--target",
        "17",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: --target is a length in instructions; it cannot be used with --objective latency\n"
    );
    let o = superopt(&["search", "sort3", "--meter", "tsc"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: --meter ranks the finalists of --objective latency; add --objective latency or use `superopt bench`\n"
    );
}

fn game(objective: Objective) -> SortGame {
    SortGame::with_objective(&Task::load("sort3").unwrap(), objective)
}

fn network3() -> Vec<Insn> {
    let task = Task::load("sort3").unwrap();
    let c = superopt::game::network::classic_comparators(3).unwrap();
    superopt::game::network::network_kernel(&task.scratch, 3, c)
}

#[test]
fn latency_cost_bound_is_admissible_along_the_network() {
    let g = game(Objective::Latency);
    let program = network3();
    // Play the core (between the loads and the stores) through the game.
    let core = &program[3..program.len() - 3];
    let mut s = g.initial();
    let mut states = vec![s.clone()];
    for &insn in core {
        let a = g.moves().iter().position(|&m| m == insn).unwrap() as u16;
        s = g.step(&s, a).unwrap();
        states.push(s.clone());
    }
    let total = g.solution_cost(&s).unwrap();
    // 11 model cycles = 132 ticks, times the weight 4, plus 18 instructions.
    assert_eq!(total, 4 * 132 + 18);
    for st in &states {
        assert!(g.cost(st) + g.lower_bound(st) <= total);
    }
    // Under length, the same path costs its length.
    let l = game(Objective::Length);
    let mut s = l.initial();
    for &insn in core {
        let a = l.moves().iter().position(|&m| m == insn).unwrap() as u16;
        s = l.step(&s, a).unwrap();
    }
    assert_eq!(l.solution_cost(&s), Some(18));
}

#[test]
fn dead_code_is_removed_and_outputs_are_unchanged() {
    use Reg::*;
    let mut p = network3();
    // A copy nobody reads, a cmp whose flags are overwritten, and a cmov into that copy.
    p.insert(3, Insn::Mov { dst: R9d, src: Eax });
    p.insert(4, Insn::Cmp { a: Eax, b: Edx });
    p.insert(
        8,
        Insn::Cmov {
            cc: Cond::L,
            dst: R9d,
            src: Ecx,
        },
    );
    let clean = without_dead_code(&p);
    assert_eq!(clean, network3());
    let g = game(Objective::Length);
    let (a, b) = (g.run(&p).unwrap(), g.run(&clean).unwrap());
    assert_eq!(
        superopt::game::check_sorted(g.test_vectors(), &a),
        superopt::game::check_sorted(g.test_vectors(), &b)
    );
    assert!(superopt::game::check_sorted(g.test_vectors(), &b).is_ok());
}

#[test]
fn bench_checks_logged_kernels_and_skips_bad_ones_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").join("sort3");
    std::fs::create_dir_all(&logs).unwrap();
    let good = std::fs::read_to_string("search-logs/examples/sort3-latency-seed0.json").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    // An edited log that would clobber the stack pointer, and one that is not assembly.
    v["best"]["program_att"][0] = "xor %esp, %esp".into();
    std::fs::write(logs.join("a.json"), v.to_string()).unwrap();
    v["best"]["program_att"] = serde_json::json!(["this is not asm"]);
    std::fs::write(logs.join("b.json"), v.to_string()).unwrap();
    let o = bench(dir.path(), &["--meter", "model"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("a.json: line 1: uses the stack pointer rsp\n"),
        "{err}"
    );
    assert!(err.contains("b.json:1: no such instruction"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(!stdout(&o).contains("superopt"), "{}", stdout(&o));
}

#[test]
fn bench_refuses_bad_outputs_before_timing() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("x.png").display().to_string();
    let o = superopt(&["bench", "sort3", "--csv", &same, "--png", &same]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: --csv and --png name the same file: {same}\n")
    );
    let spelled = dir.path().join(".").join("x.png").display().to_string();
    let o = superopt(&["bench", "sort3", "--csv", &same, "--png", &spelled]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: --csv and --png name the same file: {same}\n")
    );
    // Charts are PNG only: another name is refused, not filled with PNG bytes.
    let svg = dir.path().join("x.svg").display().to_string();
    let o = superopt(&["bench", "sort3", "--png", &svg]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: --png {svg}: charts are written as PNG only; name the file .png\n")
    );
    assert!(!dir.path().join("x.svg").exists());
    // A folder where the CSV should go is not replaced.
    let folder = dir.path().display().to_string();
    let o = superopt(&["bench", "sort3", "--csv", &folder]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: {folder}: not a regular file; refusing to replace it\n")
    );
    assert!(dir.path().is_dir());
    let o = superopt(&["bench", "sort3", "--samples", "18446744073709551615"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: --samples must be at most 1000000, got 18446744073709551615\n"
    );
}

/// No output of bench is one of its inputs (kernel files, the task file, the logs it reads),
/// however the path reaches it (as given, spelled otherwise, through a symlink, a hard link
/// or a symlinked folder); and a file bench did not write is not replaced. All refused
/// before anything is timed, with the file left as it was.
#[test]
fn bench_never_writes_over_its_inputs_or_files_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = |f: &str| d.join(f).display().to_string();
    let kernel = std::fs::read_to_string("tests/kernels/sort3_found17.s").unwrap();
    let k = write(d, "k.s", &kernel);
    let k_png = write(d, "k.png", &kernel);
    let sort3 = std::fs::read_to_string("programs/sort3.toml").unwrap();
    let t = write(d, "t.toml", &sort3);
    let logs = d.join("logs");
    std::fs::create_dir_all(logs.join("sort3")).unwrap();
    std::fs::copy(
        "search-logs/examples/sort3-mcts-seed1.json",
        logs.join("sort3/a.json"),
    )
    .unwrap();
    let logs_s = logs.display().to_string();
    let log = format!("{logs_s}/sort3/a.json");
    std::os::unix::fs::symlink(&k, d.join("link.csv")).unwrap();
    std::fs::hard_link(&k, d.join("hard.csv")).unwrap();
    std::fs::hard_link(&log, d.join("log.csv")).unwrap();
    std::os::unix::fs::symlink(d, d.join("dirlink")).unwrap();
    let run = |task: &str, csv: &str, png: &str| {
        let mut args = vec![
            "bench",
            task,
            &k,
            &k_png,
            "--syntax",
            "intel",
            "--meter",
            "model",
            "--log-dir",
            &logs_s,
            "--csv",
            csv,
            "--png",
            png,
        ];
        args.extend_from_slice(&QUICK);
        superopt(&args)
    };
    let refused = |task: &str, csv: &str, png: &str, want: String| {
        let o = run(task, csv, png);
        assert_eq!(o.status.code(), Some(2), "{csv} {png}");
        assert_eq!(stderr(&o), format!("error: {want}\n"));
        assert_eq!(stdout(&o), "");
    };
    let input = |flag: &str, out: &str, what: &str, input: &str| {
        format!("{flag} {out} is {what} {input}; bench never writes over its inputs (name the output otherwise)")
    };
    let png = p("b.png");
    refused("sort3", &k, &png, input("--csv", &k, "the kernel file", &k));
    refused(
        "sort3",
        &p("b.csv"),
        &k_png,
        input("--png", &k_png, "the kernel file", &k_png),
    );
    refused(&t, &t, &png, input("--csv", &t, "the task file", &t));
    std::fs::create_dir(d.join("sub")).unwrap();
    let dotted = p("sub/../k.s");
    refused(
        "sort3",
        &dotted,
        &png,
        input("--csv", &dotted, "the kernel file", &k),
    );
    let via = p("dirlink/k.s");
    refused(
        "sort3",
        &via,
        &png,
        input("--csv", &via, "the kernel file", &k),
    );
    for link in ["link.csv", "hard.csv"] {
        refused(
            "sort3",
            &p(link),
            &png,
            input("--csv", &p(link), "the kernel file", &k),
        );
    }
    refused(
        "sort3",
        &p("log.csv"),
        &png,
        input("--csv", &p("log.csv"), "the search log", &log),
    );
    // Files that bench did not write: a CSV without its header line, a .png that is not one.
    let notes = write(d, "notes.csv", "a,b\n1,2\n");
    refused(
        "sort3",
        &notes,
        &png,
        format!("--csv {notes} exists and was not written by superopt bench (its first line is not bench's CSV header); refusing to replace it (move it away or name another file)"),
    );
    let fake = write(d, "fake.png", "not a picture\n");
    refused(
        "sort3",
        &p("b.csv"),
        &fake,
        format!("--png {fake} exists and is not a PNG image; refusing to replace it (move it away or name another file)"),
    );
    // Nothing was written or changed.
    for f in [&k, &k_png] {
        assert_eq!(std::fs::read_to_string(f).unwrap(), kernel);
    }
    assert_eq!(std::fs::read_to_string(&t).unwrap(), sort3);
    assert_eq!(
        std::fs::read(&log).unwrap(),
        std::fs::read("search-logs/examples/sort3-mcts-seed1.json").unwrap()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "a,b\n1,2\n");
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "not a picture\n");
    assert!(!d.join("b.csv").exists() && !d.join("b.png").exists());
    // Its own outputs bench replaces: a second run over the first one's files.
    for _ in 0..2 {
        let o = run(&t, &p("b.csv"), &png);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let csv = std::fs::read_to_string(d.join("b.csv")).unwrap();
    assert!(csv.starts_with(
        "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status,throughput,throughput_low,throughput_high,throughput_ratio,cycles_2,low_2,high_2,throughput_2,throughput_low_2,throughput_high_2,latency_verdict,throughput_verdict\n"
    ));
}

#[test]
fn a_task_without_a_spare_register_has_no_network_row() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string("programs/sort3.toml")
        .unwrap()
        .replace("name = \"sort3\"", "name = \"tight3\"")
        .replace(
            "scratch = [\"eax\", \"ecx\", \"edx\", \"esi\", \"r8d\", \"r9d\", \"r10d\", \"r11d\"]",
            "scratch = [\"eax\", \"ecx\", \"edx\"]",
        );
    assert!(spec.contains("scratch = [\"eax\", \"ecx\", \"edx\"]"));
    let file = write(dir.path(), "tight3.toml", &spec);
    let csv = dir.path().join("b.csv").display().to_string();
    let png = dir.path().join("b.png").display().to_string();
    let o = superopt(&[
        "bench", &file, "--meter", "model", "--csv", &csv, "--png", &png,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("network ("), "{}", stdout(&o));
}

#[test]
fn latency_bound_is_admissible_on_the_solutions_searches_find() {
    use std::sync::{atomic::AtomicBool, Arc};
    use superopt::search::{mcts, Budget, HeuristicEvaluator, MctsConfig, Shared};
    let g = game(Objective::Latency);
    let mut checked = 0;
    // Every improvement of 40 short searches: solutions of many costs and shapes.
    for seed in 0..40 {
        let budget = Budget {
            time: std::time::Duration::from_secs(60),
            target: None,
            max_expansions: Some(3_000),
        };
        let shared = Shared::new(budget, Arc::new(AtomicBool::new(false)));
        let cfg = MctsConfig {
            seed,
            ..MctsConfig::default()
        };
        mcts(&g, &HeuristicEvaluator { temperature: 1.0 }, &cfg, &shared);
        for f in shared.found() {
            let mut path = vec![g.initial()];
            for &a in &f.actions {
                let next = g.step(path.last().unwrap(), a).unwrap();
                path.push(next);
            }
            let total = g.solution_cost(path.last().unwrap()).unwrap();
            assert_eq!(total, f.cost);
            for s in &path {
                assert!(g.cost(s) + g.lower_bound(s) <= total);
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} solutions");
}

#[test]
fn bench_replaces_a_csv_an_earlier_version_wrote() {
    // Before throughput joined the table, bench's CSV header ended at `status`.
    let dir = tempfile::tempdir().unwrap();
    let old = "task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status\n\"sort3\",\"model\"\n";
    std::fs::write(dir.path().join("b.csv"), old).unwrap();
    let o = bench(dir.path(), &["--meter", "model"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csv = std::fs::read_to_string(dir.path().join("b.csv")).unwrap();
    assert!(csv.starts_with("task,meter,unit,subject,source,length,cycles,low,high,ns,ratio,model_cycles,status,throughput,"), "{csv}");
}

#[test]
fn the_intel_table_gives_its_own_figures_and_logs_say_which_table_costed_a_search() {
    let dir = tempfile::tempdir().unwrap();
    // sort3's cmov network: loads 5 cycles on Golden Cove (4 on Zen 4), three layers of cmp +
    // cmov, the store: 12 cycles against 11.
    for (uarch, name, cycles) in [
        ("zen4", "AMD Zen 4", "11.00"),
        ("golden-cove", "Intel Golden Cove", "12.00"),
    ] {
        let o = bench(
            dir.path(),
            &["--meter", "model", "--runs", "1", "--uarch", uarch],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.starts_with(&format!("sort3: meter model: static {name} model (")),
            "{out}"
        );
        let row = out.lines().find(|l| l.starts_with("network (3")).unwrap();
        assert!(row.contains(&format!(" {cycles} ")), "{row}");
    }
    // The table by program too: a store forwarded to a load of the same slot.
    let p = [
        Insn::Load {
            dst: Reg::Eax,
            slot: 0,
        },
        Insn::Store {
            slot: 1,
            src: Reg::Eax,
        },
        Insn::Load {
            dst: Reg::Ecx,
            slot: 1,
        },
    ];
    // Zen 4: load 4, forwarded 6 later, load 4 = 14; Golden Cove: 5 + 5 + 5 = 15.
    assert_eq!(model::program_state_on(model::Uarch::Zen4, &p).end, 14);
    assert_eq!(
        model::program_state_on(model::Uarch::GoldenCove, &p).end,
        15
    );

    // A bad SUPEROPT_UARCH is a one-line error; --uarch wins over it.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen5")
        .args(["search", "sort3", "--budget", "1s"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: SUPEROPT_UARCH=zen5 names no model table (known: zen4, golden-cove)\n"
    );

    // A latency search costed with the Intel table records it; replay plays it back with it.
    let logs = dir.path().join("logs2").display().to_string();
    let o = superopt(&[
        "search",
        "sort3",
        "--objective",
        "latency",
        "--meter",
        "model",
        "--uarch",
        "golden-cove",
        "--threads",
        "1",
        "--budget",
        "2s",
        "--log-dir",
        &logs,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(" cycles (Intel Golden Cove table); fastest of "),
        "{}",
        stdout(&o)
    );
    let log = std::fs::read_dir(Path::new(&logs).join("sort3"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(v["config"]["uarch"], "golden-cove");
    let att: Vec<String> = v["best"]["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let program = superopt::asm::parse_str(&att.join("\n"), superopt::asm::Syntax::Att, "<log>")
        .unwrap()
        .to_game(3)
        .unwrap();
    assert_eq!(
        v["best"]["latency"]["model_cycles"].as_f64().unwrap(),
        model::program_state_on(model::Uarch::GoldenCove, &program).cycles()
    );
    let o = superopt(&["replay", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\nmodel table Intel Golden Cove\n"),
        "{}",
        stdout(&o)
    );
    // The tree's costs are the Intel table's: the principal variation spells the kernel.
    assert!(
        stdout(&o).contains("; it is the logged best kernel\n"),
        "{}",
        stdout(&o)
    );
}
