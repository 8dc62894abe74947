//! The policy/value network: checkpoints, move-table checks, learning, and guiding a search.

use candle_nn::Optimizer;
use std::sync::{atomic::AtomicBool, Arc};
use std::time::Duration;
use superopt::game::{GameState, SortGame};
use superopt::net::train::{losses, Sample};
use superopt::net::PolicyValueNet;
use superopt::oracle::{verify_program, NativeConfig, Status};
use superopt::search::{mcts, Action, Budget, Environment, MctsConfig, Shared};
use superopt::Task;

fn game(name: &str) -> SortGame {
    SortGame::new(&Task::load(name).unwrap())
}

/// A few states along a random walk from the initial state, with their legal actions.
fn states(g: &SortGame, count: usize) -> Vec<(GameState, Vec<Action>)> {
    let mut out = Vec::new();
    let mut s = g.initial();
    let mut k = 0usize;
    while out.len() < count {
        let mut legal = Vec::new();
        g.legal_actions(&s, &mut legal);
        let children: Vec<(Action, GameState)> = legal
            .iter()
            .filter_map(|&a| g.step(&s, a).map(|c| (a, c)))
            .collect();
        if children.is_empty() {
            s = g.initial();
            continue;
        }
        out.push((s.clone(), children.iter().map(|c| c.0).collect()));
        k = (k * 7 + 3) % children.len();
        s = children[k].1.clone();
    }
    out
}

fn outputs(
    net: &PolicyValueNet,
    g: &SortGame,
    batch: &[(GameState, Vec<Action>)],
) -> (Vec<u32>, Vec<u32>) {
    let refs: Vec<&GameState> = batch.iter().map(|b| &b.0).collect();
    let acts: Vec<&[Action]> = batch.iter().map(|b| b.1.as_slice()).collect();
    let out = net.forward(g, &refs, &acts).unwrap();
    let bits = |t: &candle_core::Tensor| -> Vec<u32> {
        t.to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    (bits(&out.logits), bits(&out.values))
}

#[test]
fn a_saved_net_reloads_bit_identically() {
    let g = game("sort3");
    let net = PolicyValueNet::new(&["sort3"], 3, 32, 1).unwrap();
    let batch = states(&g, 6);
    let before = outputs(&net, &g, &batch);
    assert_eq!(
        before.0.len(),
        batch.iter().map(|b| b.1.len()).sum::<usize>(),
        "one logit per listed action"
    );
    assert_eq!(before.1.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-test");
    net.save(&stem).unwrap();
    let back = PolicyValueNet::load_for(&g, &stem).unwrap();
    assert_eq!(back.meta(), net.meta());
    assert_eq!(outputs(&back, &g, &batch), before);
}

/// Moving a net between devices keeps its weights: a copy on the CPU computes exactly what
/// the original does and saves the same bytes. (The CUDA path needs a build with the `cuda`
/// feature and a GPU; a build without it refuses `--device cuda` in one line.)
#[test]
fn a_net_moved_to_a_device_computes_the_same() {
    let g = game("sort3");
    let net = PolicyValueNet::new(&["sort3"], 3, 16, 5).unwrap();
    let batch = states(&g, 5);
    let moved = net
        .to_device(&superopt::net::DeviceKind::Cpu.device().unwrap())
        .unwrap();
    assert_eq!(outputs(&moved, &g, &batch), outputs(&net, &g, &batch));
    let dir = tempfile::tempdir().unwrap();
    net.save(&dir.path().join("a")).unwrap();
    moved.save(&dir.path().join("b")).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("a.safetensors")).unwrap(),
        std::fs::read(dir.path().join("b.safetensors")).unwrap()
    );
    if !cfg!(feature = "cuda") {
        let e = superopt::net::DeviceKind::Cuda.device().unwrap_err();
        assert_eq!(
            e.to_string(),
            "--device cuda: this superopt was built without CUDA; rebuild it with `cargo build --release --features cuda` on a machine with the CUDA toolkit"
        );
    }
}

#[test]
fn equal_seeds_give_equal_nets() {
    let g = game("sort3");
    let batch = states(&g, 4);
    let out = |seed| {
        outputs(
            &PolicyValueNet::new(&["sort3"], 3, 16, seed).unwrap(),
            &g,
            &batch,
        )
    };
    assert_eq!(out(5), out(5));
    assert_ne!(out(5), out(6));
}

/// One net serves several n: a net for n <= 5 evaluates sort3, sort4 and sort5 states.
#[test]
fn one_net_serves_several_array_lengths() {
    let net = PolicyValueNet::new(&["sort3", "sort4"], 5, 16, 3).unwrap();
    for name in ["sort3", "sort4", "sort5"] {
        let g = game(name);
        net.check_task(&g).unwrap();
        let batch = states(&g, 3);
        let (logits, values) = outputs(&net, &g, &batch);
        assert_eq!(logits.len(), batch.iter().map(|b| b.1.len()).sum::<usize>());
        assert!(values
            .iter()
            .all(|&v| (0.0..=1.0).contains(&f32::from_bits(v))));
    }
}

#[test]
fn a_net_that_cannot_serve_the_task_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-net");
    PolicyValueNet::new(&["sort3"], 3, 16, 1)
        .unwrap()
        .save(&stem)
        .unwrap();
    let json = stem.with_extension("json");
    let err = PolicyValueNet::load_for(&game("sort4"), &stem)
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: the net serves arrays of up to 3 elements, task sort4 has 4 (train one with --n-max 4)",
            json.display()
        )
    );
    // Another instruction vocabulary (a net from a superopt with other moves).
    let text = std::fs::read_to_string(&json).unwrap();
    let hash = superopt::net::vocabulary_hash();
    std::fs::write(&json, text.replace(&hash, "0123456789abcdef")).unwrap();
    let err = PolicyValueNet::load_for(&game("sort3"), &stem)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: the net was built for another instruction vocabulary or architecture",
            json.display()
        )),
        "{err}"
    );
    assert!(err.contains("moves 0123456789abcdef"), "{err}");
    assert_eq!(err.lines().count(), 1);
    // A newer metadata version.
    std::fs::write(&json, text.replace("\"version\": 2", "\"version\": 9")).unwrap();
    let err = PolicyValueNet::load(&stem)
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: net metadata version 9 is newer than this superopt supports (2)",
            json.display()
        )
    );
    // Truncated metadata.
    std::fs::write(&json, &text[..text.len() / 2]).unwrap();
    let err = PolicyValueNet::load(&stem)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(&format!("{}: not valid net metadata: ", json.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

/// AdamW steps on a fixed batch (policy cross-entropy + value squared error) lower the loss.
#[test]
fn training_steps_lower_the_loss_on_a_fixed_batch() {
    let g = game("sort3");
    let net = PolicyValueNet::new(&["sort3"], 3, 32, 1).unwrap();
    // Targets: all mass on the first legal action, and a value that grows with the length.
    let batch: Vec<Sample> = states(&g, 16)
        .into_iter()
        .map(|(state, actions)| {
            let mut policy = vec![0.0; actions.len()];
            policy[0] = 1.0;
            Sample {
                value: (state.len as f32 / 20.0).min(1.0),
                state,
                actions,
                policy,
            }
        })
        .collect();
    let refs: Vec<&Sample> = batch.iter().collect();
    let loss = |net: &PolicyValueNet| {
        let (p, v) = losses(net, &g, &refs).unwrap();
        (p + v).unwrap()
    };
    let mut opt = candle_nn::AdamW::new(
        net.vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-2,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )
    .unwrap();
    let first = loss(&net).to_scalar::<f32>().unwrap();
    for _ in 0..30 {
        opt.backward_step(&loss(&net)).unwrap();
    }
    let last = loss(&net).to_scalar::<f32>().unwrap();
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}

/// The policy target is a softmax of the children's values in instructions: a child one
/// instruction worse gets `1/e` of the weight; an unvisited child gets none.
#[test]
fn policy_targets_weigh_children_by_length() {
    let g = game("sort3");
    let scale = g.value_scale();
    let v = |len: f32| 1.0 - len / scale;
    let t = superopt::net::train::policy_target(&g, &[v(17.0), v(18.0), f32::NAN, v(17.0)], 1.0);
    let e = (-1.0f32).exp();
    let z = 2.0 + e;
    for (got, want) in t.iter().zip([1.0 / z, e / z, 0.0, 1.0 / z]) {
        assert!((got - want).abs() < 1e-4, "{t:?}");
    }
}

/// With an (untrained, seeded) net as evaluator, MCTS finds kernels, and every one it
/// reports passes the full oracle.
#[test]
fn net_guided_search_reports_only_verified_kernels() {
    let task = Task::load("sort3").unwrap();
    let g = SortGame::new(&task);
    let net = PolicyValueNet::new(&["sort3"], 3, 16, 5).unwrap();
    let budget = Budget {
        time: Duration::from_secs(120),
        target: Some(18),
        max_expansions: Some(200_000),
    };
    let shared = Shared::new(budget, Arc::new(AtomicBool::new(false)));
    let cfg = MctsConfig {
        c_puct: 0.1,
        simulations: 50,
        seed: 1,
        ..MctsConfig::default()
    };
    mcts(&g, &net, &cfg, &shared);
    let found = shared.found();
    assert!(
        !found.is_empty(),
        "no kernel in {} programs",
        shared.explored()
    );
    for f in found {
        let program = g.program(&f.actions).unwrap();
        assert_eq!(program.len() as u32, f.cost);
        let v = verify_program(
            &task,
            &program,
            &NativeConfig {
                random: 5_000,
                seed: 1,
            },
        )
        .unwrap();
        assert_eq!(v.status, Status::Verified, "{:?}", v.reason);
    }
}

fn search_json(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A search command refused with exit 2 and exactly this one-line error.
fn refused_search(dir: &std::path::Path, args: &[&str], message: &str) {
    let (code, _, err) = search_json(dir, args);
    assert_eq!(code, Some(2), "{args:?}");
    assert_eq!(err, format!("error: {message}\n"));
}

/// `search --net PATH` uses that net and names it; `--net none` is uniform priors; without
/// either, the net in ./nets named after the task is used and called shipped; a net that
/// cannot serve the task is refused in one line.
#[test]
fn search_picks_its_guide_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nets")).unwrap();
    PolicyValueNet::new(&["sort3"], 3, 16, 5)
        .unwrap()
        .save(&dir.path().join("nets/sort3"))
        .unwrap();
    let common = [
        "--budget",
        "120s",
        "--threads",
        "1",
        "--target",
        "18",
        "--json",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["search", "sort3"];
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        search_json(dir.path(), &args)
    };
    let (code, v, err) = run(&["--net", "nets/sort3.safetensors", "--net-prior", "net"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["evaluator"], "net nets/sort3.safetensors");
    let log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(v["log"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(log["config"]["evaluator"], "net nets/sort3.safetensors");
    // By default the net's priors are multiplied by the heuristic's; the log records which.
    let (code, v, _) = run(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        v["evaluator"],
        "net nets/sort3.safetensors (shipped) x heuristic"
    );
    let log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(v["log"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(log["config"]["guide"]["heuristic"], true);
    refused_search(
        dir.path(),
        &[
            "search",
            "sort3",
            "--evaluator",
            "heuristic",
            "--net-prior",
            "net",
        ],
        "--net-prior needs a net; this search is guided by heuristic",
    );
    let (code, v, _) = run(&["--net", "none"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["evaluator"], "uniform");
    let (code, v, _) = run(&["--evaluator", "heuristic"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["evaluator"], "heuristic");
    refused_search(
        dir.path(),
        &[
            "search",
            "sort4",
            "--budget",
            "1s",
            "--net",
            "nets/sort3.safetensors",
        ],
        "nets/sort3.json: the net serves arrays of up to 3 elements, task sort4 has 4 (train one with --n-max 4)",
    );
    refused_search(
        dir.path(),
        &["search", "sort3", "--strategy", "astar", "--net", "none"],
        "--net and --evaluator guide MCTS; A* always uses the game's estimate",
    );
    refused_search(
        dir.path(),
        &["search", "sort3", "--net", "none", "--net-value", "net"],
        "--net-value needs a net; this search is guided by uniform, which takes values from the game's estimate",
    );
    refused_search(
        dir.path(),
        &["search", "sort3", "--net", "none", "--device", "cpu"],
        "--device places the guiding net; this search is guided by uniform, which has none",
    );
    if !cfg!(feature = "cuda") {
        let no_cuda = "--device cuda: this superopt was built without CUDA; rebuild it with `cargo build --release --features cuda` on a machine with the CUDA toolkit";
        refused_search(
            dir.path(),
            &["search", "sort3", "--device", "cuda"],
            no_cuda,
        );
        refused_search(
            dir.path(),
            &["train", "sort3", "--budget", "1s", "--device", "cuda"],
            no_cuda,
        );
    }
    // On the CPU, named explicitly, the net guides as before.
    let (code, v, _) = run(&["--device", "cpu"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        v["evaluator"],
        "net nets/sort3.safetensors (shipped) x heuristic"
    );
    let (code, _, err) = search_json(dir.path(), &["search", "sort3", "--net", "nets/missing"]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("error: nets/missing.json: "), "{err}");
    assert_eq!(err.lines().count(), 1);
}

/// A short self-play run on two tasks writes a checkpoint that reloads, with its training
/// counts, and a learning curve with one row per round.
#[test]
fn self_play_training_writes_a_reloadable_checkpoint_and_a_curve() {
    use superopt::net::train::{train, write_curve_csv, write_curve_png, TrainConfig};
    let games = [game("sort3"), game("sort4")];
    let mut net = PolicyValueNet::new(&["sort3"], 4, 16, 2).unwrap();
    let cfg = TrainConfig {
        max_episodes: Some(6),
        simulations: 20,
        batch: 8,
        actors: 2,
        seed: 2,
        ..TrainConfig::default()
    };
    let mut seen = 0;
    let stop = Arc::new(AtomicBool::new(false));
    let curve = train(&games, &mut net, &cfg, &stop, |_, _| seen += 1).unwrap();
    assert_eq!((curve.len(), seen), (3, 3), "three rounds of two episodes");
    assert_eq!(curve.last().unwrap().episode, 6);
    assert_eq!(
        curve.last().unwrap().step,
        12,
        "two learner steps per episode"
    );
    assert!(curve.iter().all(|p| p.policy_loss.is_finite()
        && p.value_loss.is_finite()
        && p.best_length.len() == 2));
    assert_eq!(net.meta().steps, 12);
    assert_eq!(net.meta().tasks, ["sort3", "sort4"]);
    assert!(net.meta().samples > 0);
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort34");
    net.save(&stem).unwrap();
    let names = ["sort3".to_string(), "sort4".to_string()];
    write_curve_csv(&curve, &names, &stem.with_extension("csv")).unwrap();
    assert_eq!(PolicyValueNet::load(&stem).unwrap().meta(), net.meta());
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with(
        "episode,step,elapsed_s,policy_loss,value_loss,games_per_s,best_sort3,best_sort4\n"
    ));
    let png = stem.with_extension("png");
    let font = std::path::Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists();
    match write_curve_png(&curve, &names, &png) {
        Ok(()) => assert!(std::fs::read(&png)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")),
        Err(e) => {
            assert!(!font, "a font is installed, yet: {e}");
            assert!(
                e.to_string().contains("no TrueType font for the chart"),
                "{e}"
            );
        }
    }
}

/// `superopt train` on the command line: bad budgets and tasks are one-line errors; a short
/// run writes the checkpoint, the CSV and the metadata with its evaluation.
#[test]
fn train_command() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_superopt");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .env("SUPEROPT_UARCH", "zen4")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // A command that must succeed; its output.
    let succeeded = |args: &[&str]| {
        let o = run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    // A refused command: exit 2 and exactly this one-line error.
    let refused = |args: &[&str], message: &str| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!("error: {message}\n")
        );
    };
    let o = run(&["train", "sort3", "--budget", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: ") && err.contains("abc"), "{err}");
    assert_eq!(err.lines().count(), 1);
    let o = run(&["train", "sort3", "sort99", "--budget", "1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sort99"));
    refused(
        &["train", "sort3", "sort3", "--budget", "1s"],
        "task sort3 is named twice",
    );
    refused(
        &["train", "sort3", "--budget", "1s", "--out", ".."],
        "--out '..': use letters, digits, '_', '-' and '.', not starting with '.'",
    );
    let o = succeeded(&[
        "train",
        "sort3",
        "--budget",
        "3s",
        "--eval-budget",
        "5s",
        "--out",
        "t3",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("trained sort3 for "), "{out}");
    assert!(
        out.contains("net-guided search for 17 instructions"),
        "{out}"
    );
    for ext in ["safetensors", "json", "csv"] {
        assert!(
            dir.path().join("nets/t3").with_extension(ext).is_file(),
            "{ext}"
        );
    }
    // An existing checkpoint is not replaced without --overwrite.
    refused(
        &["train", "sort3", "--budget", "1s", "--out", "t3"],
        "nets/t3.safetensors exists; pick another --out, or pass --overwrite to replace it",
    );
    // A dotted name is used whole: nets/t3.v2.*, not nets/t3.*.
    succeeded(&[
        "train",
        "sort3",
        "--budget",
        "2s",
        "--eval-budget",
        "0s",
        "--out",
        "t3.v2",
    ]);
    assert!(dir.path().join("nets/t3.v2.safetensors").is_file());
    let o = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args([
            "search",
            "sort3",
            "--budget",
            "60s",
            "--threads",
            "1",
            "--target",
            "18",
        ])
        .args(["--json", "--net", "nets/t3.v2.safetensors"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let meta = PolicyValueNet::load(&dir.path().join("nets/t3"))
        .unwrap()
        .meta()
        .clone();
    assert_eq!(meta.tasks, ["sort3"]);
    assert_eq!(meta.n_max, 3);
    assert_eq!(meta.evaluation.len(), 1);
    assert_eq!(meta.evaluation[0].target, 17);
    assert!(meta.steps > 0 && !meta.date.is_empty());
}
