//! Search logs as records of a search: checkpoints, `search --resume`, `superopt replay`, and
//! the one-line errors for logs that cannot be read or resumed.

mod common;

use common::{stderr, stdout, superopt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use superopt::log::SearchLog;

/// The only log under `dir/<task>/`.
fn only_log(dir: &Path, task: &str) -> PathBuf {
    let logs: Vec<PathBuf> = std::fs::read_dir(dir.join(task))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs[0].clone()
}

/// Starts `superopt search ARGS --json --log-dir DIR` in the background.
fn spawn_search(args: &[&str], dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
        .args(args)
        .args(["--json", "--log-dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A finished sort3 search (heuristic, one thread, stopped at 17) and its printed JSON.
fn sort3_search(dir: &Path) -> (PathBuf, serde_json::Value) {
    let o = superopt(&[
        "search",
        "sort3",
        "--budget",
        "60s",
        "--seed",
        "1",
        "--threads",
        "1",
        "--target",
        "17",
        "--evaluator",
        "heuristic",
        "--json",
        "--log-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    (only_log(dir, "sort3"), v)
}

#[test]
fn replay_principal_variation_is_the_printed_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let (path, printed) = sort3_search(dir.path());
    let log = SearchLog::read(&path).unwrap();
    assert_eq!(log.version, superopt::log::LOG_VERSION);
    assert_eq!(log.stop_reason, "target");
    let printed: Vec<String> = printed["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(printed.len(), 17);
    let pv = superopt::cli::replay::principal_variation(&log, &path).expect("a tree");
    assert_eq!(pv.program_att.as_deref(), Some(&printed[..]));
    // 3 loads and 3 stores come from the game; the tree holds the 11 moves between.
    assert_eq!(pv.actions.len(), 11);
    let tree = log.tree.as_ref().unwrap();
    for &i in &pv.nodes {
        assert_eq!(tree.nodes[i as usize].solution, Some(17));
    }
    let stats = log.stats.as_ref().unwrap();
    assert_eq!(
        stats.expansions_by_depth.iter().sum::<u64>(),
        log.programs_explored
    );

    let out = superopt(&["replay", path.to_str().unwrap(), "--top", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "the principal variation, with the game's loads and stores, is a 17-instruction program; it is the logged best kernel"
        ),
        "{text}"
    );
    // One line per move of the principal variation, numbered 1..=11.
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("depth  move"))
        .skip(1)
        .take_while(|l| !l.starts_with('('))
        .collect();
    assert_eq!(rows.len(), 11, "{text}");
    for (k, (row, &i)) in rows.iter().zip(&pv.nodes).enumerate() {
        let n = &tree.nodes[i as usize];
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[0], (k + 1).to_string());
        assert!(row.contains(&n.move_text), "{row}");
        assert!(row.contains(&format!(" {} ", n.visits)), "{row}");
    }
    assert!(text.contains("transposition hits"), "{text}");
    assert!(text.contains("timeline of improvements:"), "{text}");
}

#[test]
fn replay_writes_dot_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sort3_search(dir.path());
    let dot = dir.path().join("tree.dot");
    let png = dir.path().join("best.png");
    let out = superopt(&[
        "replay",
        path.to_str().unwrap(),
        "--dot",
        dot.to_str().unwrap(),
        "--dot-depth",
        "2",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&dot).unwrap();
    assert!(text.starts_with("digraph search {"), "{text}");
    assert!(text.trim_end().ends_with('}'));
    // The root and its principal child, drawn red.
    assert!(text.contains("n0 [label=\"initial state"), "{text}");
    assert!(text.contains("color=red"), "{text}");
    let edges = text.lines().filter(|l| l.contains("->")).count();
    assert!(
        (2..=3 + 3 * 3 + 2).contains(&edges),
        "depth 2, 3 children each: {edges}"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Charts are PNG only: another name is refused before anything is written.
    for name in ["best.svg", "best", "best.jpg"] {
        let other = dir.path().join(name);
        let out = superopt(&[
            "replay",
            path.to_str().unwrap(),
            "--plot",
            other.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            stderr(&out),
            format!(
                "error: --plot {}: charts are written as PNG only; name the file .png\n",
                other.display()
            )
        );
        assert_eq!(stdout(&out), "");
        assert!(!other.exists());
    }
    let upper = dir.path().join("best.PNG");
    let out = superopt(&[
        "replay",
        path.to_str().unwrap(),
        "--plot",
        upper.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(&std::fs::read(&upper).unwrap()[..4], b"\x89PNG");
}

/// A search killed with SIGKILL keeps its last checkpoint, which `--resume` continues to an
/// equal or better kernel with the counts carried on.
#[test]
fn killed_search_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_search(
        &[
            "search",
            "sort4",
            "--budget",
            "10m",
            "--seed",
            "3",
            "--threads",
            "1",
            "--evaluator",
            "heuristic",
            "--checkpoint",
            "1s",
        ],
        dir.path(),
    );
    // Wait for a checkpoint holding a verified kernel (sort4 finds one within seconds).
    let start = Instant::now();
    let before = loop {
        std::thread::sleep(Duration::from_millis(300));
        let logs = std::fs::read_dir(dir.path().join("sort4")).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        });
        if logs == 1 {
            let log = SearchLog::read(&only_log(dir.path(), "sort4")).unwrap();
            if log.best.as_ref().is_some_and(|b| b.verified) && log.programs_explored > 0 {
                break log;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint with a kernel"
        );
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let path = only_log(dir.path(), "sort4");
    let killed = SearchLog::read(&path).unwrap();
    assert_eq!(killed.stop_reason, "running");
    let best_before = killed.best.as_ref().unwrap().length;
    assert!(best_before <= before.best.as_ref().unwrap().length);

    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "2s",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["length"].as_u64().unwrap() as usize <= best_before);
    assert_eq!(v["log"].as_str(), path.to_str());
    let resumed = SearchLog::read(&path).unwrap();
    assert_eq!(resumed.stop_reason, "budget");
    assert!(resumed.best.as_ref().unwrap().length <= best_before);
    assert!(resumed.programs_explored > killed.programs_explored);
    assert!(resumed.elapsed_s > killed.elapsed_s + 1.5);
    assert_eq!(resumed.started, killed.started);
    let runs = &resumed.resume.as_ref().unwrap().runs;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].stop_reason, "running");
    assert_eq!(runs[1].stop_reason, "budget");
    // Nothing found before is lost: the old timeline is the start of the new one.
    assert!(resumed.timeline.len() >= killed.timeline.len());
    for (a, b) in killed.timeline.iter().zip(&resumed.timeline) {
        assert_eq!((a.length, a.actions.clone()), (b.length, b.actions.clone()));
    }
    // The tree kept its counts and grew.
    let (t0, t1) = (killed.tree.unwrap(), resumed.tree.unwrap());
    assert!(t1.nodes[0].visits > t0.nodes[0].visits);
    assert!(resumed.stats.unwrap().episodes >= killed.stats.unwrap().episodes);
}

/// Writes `text` as a log file and returns its path.
fn log_file(dir: &Path, name: &str, text: &str) -> String {
    common::write(dir, name, text)
}

#[test]
fn unreadable_logs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sort3_search(dir.path());
    let good = std::fs::read_to_string(&path).unwrap();
    let cut = good[..good.len() / 2].trim_end();
    let lines = cut.lines().count();
    let col = cut.lines().last().unwrap().len();
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let mut newer = v.clone();
    newer["version"] = 99.into();
    let mut no_task = v.clone();
    no_task.as_object_mut().unwrap().remove("task");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut x = v.clone();
        f(&mut x);
        x.to_string()
    };
    let cases = [
        (
            "truncated.json",
            cut.to_string(),
            format!("truncated search log: the JSON ends early (line {lines}, column {col})"),
        ),
        (
            "corrupted.json",
            good.replacen("\"task\"", "\"task\" oops", 1),
            "corrupted search log: expected `:` at line 4 column 10".into(),
        ),
        (
            "newer.json",
            newer.to_string(),
            "search log version 99 is newer than this superopt reads (1 to 2); update superopt"
                .into(),
        ),
        (
            "other.json",
            "{\"name\": 1}".into(),
            "not a search log: no \"version\" field".into(),
        ),
        (
            "missing.json",
            no_task.to_string(),
            "corrupted search log: missing field `task`".into(),
        ),
        (
            "child.json",
            edit(&|x| x["tree"]["nodes"][0]["children"][0] = 999_999.into()),
            "corrupted search log: tree node 0 names child 999999, which does not exist".into(),
        ),
        (
            "cycle.json",
            edit(&|x| x["tree"]["nodes"][1]["children"] = serde_json::json!([0])),
            "corrupted search log: tree node 1 names child 0 out of order".into(),
        ),
        (
            "nodes.json",
            edit(&|x| x["tree"]["nodes"] = serde_json::json!([])),
            "corrupted search log: tree has no nodes (not even the initial state)".into(),
        ),
        (
            "stats.json",
            edit(&|x| x["stats"]["children_by_depth"] = serde_json::json!([])),
            format!(
                "corrupted search log: stats: {} depths of expansions but 0 of children",
                v["stats"]["expansions_by_depth"].as_array().unwrap().len()
            ),
        ),
        (
            "cycles.json",
            edit(&|x| x["timeline"][0]["model_cycles"] = 1e308.into()),
            "corrupted search log: timeline[0].model_cycles is 1e308".into(),
        ),
        (
            "version0.json",
            edit(&|x| x["version"] = 0.into()),
            "corrupted search log: version 0 (versions start at 1)".into(),
        ),
    ];
    for (name, text, message) in cases {
        let p = log_file(dir.path(), name, &text);
        for args in [
            vec!["replay", p.as_str()],
            vec!["search", "--resume", p.as_str()],
        ] {
            let o = superopt(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert_eq!(stderr(&o), format!("error: {p}: {message}\n"), "{args:?}");
        }
    }
}

#[test]
fn logs_that_cannot_be_resumed_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sort3_search(dir.path());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut x = v.clone();
        f(&mut x);
        x.to_string()
    };
    let v1 = std::fs::read_to_string("search-logs/examples/sort3-latency-seed0.json").unwrap();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "target.json",
            v.to_string(),
            "cannot resume: the search already reached its --target of 17".into(),
        ),
        (
            "v1.json",
            v1,
            "cannot resume a version 1 log: it was written before --resume existed (no moves or random streams to continue from)".into(),
        ),
        (
            "exhausted.json",
            edit(&|x| x["stop_reason"] = "exhausted".into()),
            "cannot resume: the search was exhausted (no shorter program is left in the space it searched)".into(),
        ),
        (
            "moves.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["moves_hash"] = "fnv64:0000000000000000".into();
            }),
            format!(
                "cannot resume: the task's move table changed since the search (log fnv64:0000000000000000, now {})",
                v["moves_hash"].as_str().unwrap()
            ),
        ),
        (
            "replay.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["timeline"][0]["actions"] = serde_json::json!([0, 0]);
            }),
            "corrupted search log: the moves of improvement 1 do not replay to a solution".into(),
        ),
        (
            "task.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["task"] = "sort4".into();
            }),
            "cannot resume: task_source builtin:sort3 now holds task sort3, not the log's task sort4".into(),
        ),
        (
            "elapsed.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["elapsed_s"] = (-5.0).into();
            }),
            "corrupted search log: elapsed_s is -5, not a number of seconds".into(),
        ),
        (
            "rng.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["resume"]["rngs"][0]["word_pos"] = "many".into();
            }),
            "corrupted search log: the random stream of worker 0 does not parse".into(),
        ),
        (
            "spent.json",
            edit(&|x| {
                x["stop_reason"] = "budget".into();
                x["elapsed_s"] = 60.0.into();
            }),
            "cannot resume: the search used its whole budget (60 s of 60 s); give --budget to run it longer".into(),
        ),
    ];
    for (name, text, message) in cases {
        let p = log_file(dir.path(), name, &text);
        let o = superopt(&["search", "--resume", &p, "--json"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert_eq!(stderr(&o), format!("error: {p}: {message}\n"), "{name}");
    }
    // Settings come from the log.
    let o = superopt(&["search", "--resume", path.to_str().unwrap(), "--seed", "4"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: the argument '--resume <LOG>' cannot be used with"),
        "{}",
        stderr(&o)
    );
    let o = superopt(&["search", "sort3", "--checkpoint", "abc"]);
    assert_eq!(
        stderr(&o),
        "error: invalid --checkpoint 'abc': expected a duration of at least 1s, such as 10s or 1m, or 0 for none\n"
    );
    let o = superopt(&["search", "sort3", "--checkpoint", "10ms"]);
    assert_eq!(
        stderr(&o),
        "error: invalid --checkpoint '10ms': expected a duration of at least 1s, such as 10s or 1m, or 0 for none\n"
    );
}

#[test]
fn replay_of_a_log_without_a_tree_says_so() {
    let o = superopt(&["replay", "search-logs/examples/sort5-latency-seed0.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(
            "no tree in this log (an A* or LNS search, a version 1 log, or --tree-nodes 0)"
        ),
        "{text}"
    );
    assert!(text.contains("timeline of improvements:"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("t.dot");
    let o = superopt(&[
        "replay",
        "search-logs/examples/sort5-latency-seed0.json",
        "--dot",
        dot.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: search-logs/examples/sort5-latency-seed0.json: no tree to draw: the log has none (an A* or LNS search, a version 1 log, or --tree-nodes 0)\n"
    );
    assert!(!dot.exists());
}

#[test]
fn a_log_being_written_cannot_be_resumed_and_outputs_must_differ() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_search(
        &[
            "search",
            "sort5",
            "--budget",
            "60s",
            "--threads",
            "1",
            "--evaluator",
            "heuristic",
        ],
        dir.path(),
    );
    let start = Instant::now();
    // The log and its lock.
    while std::fs::read_dir(dir.path().join("sort5")).map_or(0, |d| d.count()) < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "no log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = only_log(dir.path(), "sort5");
    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "1s",
    ]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: another superopt process is writing this log; wait for it to end or stop it\n",
            path.display()
        )
    );
    // Killed, its lock is gone with it: the log resumes at once.
    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "1s",
        "--json",
    ]);
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));

    let out = dir.path().join("same.png");
    let o = superopt(&[
        "replay",
        path.to_str().unwrap(),
        "--dot",
        out.to_str().unwrap(),
        "--plot",
        &format!("{}/./same.png", dir.path().display()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: --dot and --plot name the same file: {}\n",
            out.display()
        )
    );
    assert!(!out.exists());
    // No report is written over a log, the one replayed or any other.
    let o = superopt(&[
        "replay",
        path.to_str().unwrap(),
        "--dot",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: --dot {}: refusing to write over a .json file (search logs are .json); name it otherwise\n",
            path.display()
        )
    );
    let o = superopt(&["bench", "sort3", "--csv", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: --csv x.json: refusing to write over a .json file (search logs are .json); name it otherwise\n"
    );
    assert!(SearchLog::read(&path).is_ok());
}

#[test]
fn a_fifo_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("log.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = superopt(&["replay", fifo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: {}: not a regular file\n", fifo.display())
    );
    // A task file that is a FIFO is refused too.
    let fifo_task = dir.path().join("t.toml");
    let c = std::ffi::CString::new(fifo_task.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = superopt(&["search", fifo_task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: {}: not a regular file\n", fifo_task.display())
    );
    // A path with a newline still makes a one-line error.
    let o = superopt(&["replay", "no\nsuch.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: no\\nsuch.json: No such file or directory (os error 2)\n"
    );
}

/// Sends SIGINT (Ctrl-C) to `child` and waits for it to end.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the pid of a child this test started and has not waited for.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    child.wait().unwrap()
}

/// Waits (at most 60 s) until the only log of `task` under `dir` is a checkpoint of run
/// `run` (1 for the first) with more than `after` programs explored, and returns it.
fn checkpoint_of_run(dir: &Path, task: &str, run: usize, after: u64) -> SearchLog {
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let json = std::fs::read_dir(dir.join(task)).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        });
        if json == 1 {
            let log = SearchLog::read(&only_log(dir, task)).unwrap();
            let runs = log.resume.as_ref().map_or(0, |r| r.runs.len());
            if log.stop_reason == "running" && runs == run && log.programs_explored > after {
                return log;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint of run {run}"
        );
    }
}

/// `superopt search --resume LOG ARGS` in the background.
fn spawn_resume(log: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
        .args(["search", "--resume", log.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// What search accepts, resume reads: a search with the longest budget, stopped with Ctrl-C,
/// resumes, also after a resume that asked for the longest budget again; longer budgets are
/// refused where they are given.
#[test]
fn a_search_with_the_longest_budget_resumes() {
    const MAX_S: f64 = 315_576_000.0;
    assert_eq!(superopt::task::MAX_BUDGET.as_secs_f64(), MAX_S);
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_search(
        &[
            "search",
            "sort4",
            "--budget",
            "10years",
            "--seed",
            "3",
            "--threads",
            "1",
            "--evaluator",
            "heuristic",
            "--checkpoint",
            "1s",
        ],
        dir.path(),
    );
    checkpoint_of_run(dir.path(), "sort4", 1, 0);
    let status = interrupt(&mut child);
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let path = only_log(dir.path(), "sort4");
    let first = SearchLog::read(&path).unwrap();
    assert_eq!(first.stop_reason, "interrupted");
    assert_eq!(first.config["budget_s"].as_f64(), Some(MAX_S));
    assert_eq!(first.config["checkpoint_s"].as_f64(), Some(1.0));

    // Resumed for the longest budget again: the log's budget is that on top of the time spent.
    let mut child = spawn_resume(&path, &["--budget", "10years", "--json"]);
    checkpoint_of_run(dir.path(), "sort4", 2, first.programs_explored);
    let status = interrupt(&mut child);
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let second = SearchLog::read(&path).unwrap();
    assert_eq!(second.stop_reason, "interrupted");
    assert_eq!(
        second.config["budget_s"].as_f64(),
        Some(MAX_S + first.elapsed_s)
    );
    assert!(second.elapsed_s > first.elapsed_s);

    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "1s",
        "--json",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let third = SearchLog::read(&path).unwrap();
    assert_eq!(third.stop_reason, "budget");
    assert_eq!(third.resume.as_ref().unwrap().runs.len(), 3);
    assert_eq!(
        third.config["budget_s"].as_f64(),
        Some(1.0 + second.elapsed_s)
    );

    // The bound is the time already spent plus the longest budget (with 28 years spent, a
    // 10-year resume writes more than the 1e9 s of the bound that refused 40-year budgets);
    // budgets under 1e9 s, which older versions wrote, still read; more is refused.
    let edit = |elapsed: f64, budget: f64| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["elapsed_s"] = elapsed.into();
        v["config"]["budget_s"] = budget.into();
        std::fs::write(&path, v.to_string()).unwrap();
    };
    for (elapsed, budget) in [(9e8, 9e8 + MAX_S), (5.0, 9.9e8)] {
        edit(elapsed, budget);
        let o = superopt(&[
            "search",
            "--resume",
            path.to_str().unwrap(),
            "--budget",
            "1s",
            "--json",
        ]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        assert_eq!(SearchLog::read(&path).unwrap().stop_reason, "budget");
    }
    edit(5.0, 2e9);
    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: corrupted search log: config.budget_s is 2000000000 s, more than a search writes (1000000000 s)\n",
            path.display()
        )
    );
    edit(9e8, 9e8 + MAX_S + 2.0);
    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: corrupted search log: config.budget_s is 1215576002 s, more than a search writes (1215576001 s)\n",
            path.display()
        )
    );
    edit(third.elapsed_s, 1.0 + second.elapsed_s);

    // Longer budgets are refused where they are given, before anything runs.
    let too_long = "error: invalid budget '10years1s': the maximum is 10years (315576000 s)\n";
    let o = superopt(&["search", "sort3", "--budget", "10years1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), too_long);
    let o = superopt(&[
        "search",
        "--resume",
        path.to_str().unwrap(),
        "--budget",
        "10years1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), too_long);
    let o = superopt(&["search", "sort3", "--checkpoint", "40years"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: invalid --checkpoint '40years': the maximum is 10years (315576000 s)\n"
    );
    assert_eq!(SearchLog::read(&path).unwrap().elapsed_s, third.elapsed_s);
}

/// A log names a task file by its absolute path, so it resumes from any folder; a log that
/// recorded the path relative to where the search ran (as older versions did) resumes too,
/// the path taken relative to the folders above the log.
#[test]
fn a_task_file_log_resumes_from_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    let home = std::fs::canonicalize(dir.path()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string("programs/sort4.toml")
        .unwrap()
        .replacen("name = \"sort4\"", "name = \"mine\"", 1);
    assert!(spec.contains("name = \"mine\""));
    std::fs::write(home.join("mine.toml"), &spec).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
        .current_dir(&home)
        .args([
            "search",
            "mine.toml",
            "--budget",
            "1s",
            "--threads",
            "1",
            "--evaluator",
            "heuristic",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let path = only_log(&home.join("search-logs"), "mine");
    let log = SearchLog::read(&path).unwrap();
    assert_eq!(log.stop_reason, "budget");
    assert_eq!(
        log.task_source,
        home.join("mine.toml").display().to_string()
    );
    let resume = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_superopt"))
            .env("SUPEROPT_UARCH", "zen4")
            .current_dir(elsewhere.path())
            .args(["search", "--resume", path.to_str().unwrap(), "--json"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = resume(&["--budget", "1s"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let resumed = SearchLog::read(&path).unwrap();
    assert_eq!(resumed.resume.as_ref().unwrap().runs.len(), 2);
    assert_eq!(resumed.task_source, log.task_source);

    // An older log's relative path: tried as written (here: not found), then from the folders
    // above the log (search-logs/mine/, search-logs/, the folder the search ran in).
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["task_source"] = "mine.toml".into();
    std::fs::write(&path, v.to_string()).unwrap();
    let o = resume(&["--budget", "1s"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let again = SearchLog::read(&path).unwrap();
    assert_eq!(again.resume.as_ref().unwrap().runs.len(), 3);
    assert_eq!(again.task_source, log.task_source);
    // When none of them holds it, the error is the path's as written.
    v["task_source"] = "mine.toml".into();
    std::fs::write(&path, v.to_string()).unwrap();
    std::fs::rename(home.join("mine.toml"), home.join("moved.toml")).unwrap();
    let o = resume(&["--budget", "1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: cannot resume: mine.toml: No such file or directory (os error 2)\n",
            path.display()
        )
    );
}

/// A search guided by the shipped net records the net by the relative path it was found at
/// (`nets/sort3.safetensors`); the log still resumes from any other folder.
#[test]
fn a_net_guided_log_resumes_from_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("L");
    let o = superopt(&[
        "search",
        "sort3",
        "--budget",
        "1s",
        "--seed",
        "2",
        "--threads",
        "1",
        "--log-dir",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("guided by: net nets/sort3.safetensors (shipped)"));
    let moved = dir.path().join("elsewhere");
    std::fs::create_dir(&moved).unwrap();
    std::fs::copy(only_log(&logs, "sort3"), moved.join("a.json")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
        .args(["search", "--resume", "a.json", "--budget", "1s"])
        .current_dir(&moved)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("log: a.json"), "{}", stdout(&o));
}
