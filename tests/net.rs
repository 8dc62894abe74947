//! The policy/value network: checkpoints, move-table checks, learning, and guiding a search.

use candle_nn::Optimizer;
use std::sync::{atomic::AtomicBool, Arc};
use std::time::Duration;
use superopt::game::{GameState, SortGame};
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

#[test]
fn a_saved_net_reloads_bit_identically() {
    let g = game("sort3");
    let net = PolicyValueNet::new(&g, 32, 1).unwrap();
    let batch = states(&g, 6);
    let refs: Vec<&GameState> = batch.iter().map(|b| &b.0).collect();
    let (x, p) = net.features(&refs).unwrap();
    let before = net.forward(&x, &p).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-test");
    net.save(&stem).unwrap();
    let back = PolicyValueNet::load(&g, &stem).unwrap();
    assert_eq!(back.meta(), net.meta());
    let after = back.forward(&x, &p).unwrap();
    let bits = |t: &candle_core::Tensor| -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(bits(&before.logits), bits(&after.logits));
    assert_eq!(bits(&before.values), bits(&after.values));
}

#[test]
fn equal_seeds_give_equal_nets() {
    let g = game("sort3");
    let batch = states(&g, 4);
    let refs: Vec<&GameState> = batch.iter().map(|b| &b.0).collect();
    let out = |seed| {
        let net = PolicyValueNet::new(&g, 16, seed).unwrap();
        let (x, p) = net.features(&refs).unwrap();
        net.forward(&x, &p)
            .unwrap()
            .logits
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(out(5), out(5));
    assert_ne!(out(5), out(6));
}

#[test]
fn a_net_for_another_move_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-net");
    PolicyValueNet::new(&game("sort3"), 16, 1)
        .unwrap()
        .save(&stem)
        .unwrap();
    let err = PolicyValueNet::load(&game("sort4"), &stem)
        .err()
        .expect("refused")
        .to_string();
    let json = stem.with_extension("json");
    assert!(
        err.starts_with(&format!(
            "{}: the net was trained for another move table (n = 3, moves ",
            json.display()
        )),
        "{err}"
    );
    assert!(err.contains("than task sort4 (n = 4, moves "), "{err}");
    assert_eq!(err.lines().count(), 1);
}

/// AdamW steps on a fixed batch (policy cross-entropy + value squared error) lower the loss.
#[test]
fn training_steps_lower_the_loss_on_a_fixed_batch() {
    let g = game("sort3");
    let net = PolicyValueNet::new(&g, 32, 1).unwrap();
    let batch = states(&g, 16);
    let refs: Vec<&GameState> = batch.iter().map(|b| &b.0).collect();
    let (x, p) = net.features(&refs).unwrap();
    // Targets: the first legal action, and a value that grows with the program length.
    let targets: Vec<u32> = batch.iter().map(|b| b.1[0] as u32).collect();
    let targets = candle_core::Tensor::new(targets.as_slice(), &candle_core::Device::Cpu).unwrap();
    let values: Vec<f32> = batch
        .iter()
        .map(|b| (b.0.len as f32 / 20.0).min(1.0))
        .collect();
    let values = candle_core::Tensor::new(values.as_slice(), &candle_core::Device::Cpu).unwrap();
    let loss = |net: &PolicyValueNet| {
        let out = net.forward(&x, &p).unwrap();
        let ce = candle_nn::loss::cross_entropy(&out.logits, &targets).unwrap();
        let mse = (out.values - &values)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        (ce + mse).unwrap()
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

/// With the (untrained, seeded) net as evaluator, MCTS finds kernels, and every one it
/// reports passes the full oracle.
#[test]
fn net_guided_search_reports_only_verified_kernels() {
    let task = Task::load("sort3").unwrap();
    let g = SortGame::new(&task);
    // An untrained net guides poorly: with weight seeds 2 to 6 this search finds kernels
    // within the budget, with seed 1 it does not. The test is about what gets reported.
    let net = PolicyValueNet::new(&g, 16, 5).unwrap();
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

/// `search --net` loads a checkpoint, names it in the log, and refuses a net for another task.
#[test]
fn search_with_a_net_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-seed5");
    PolicyValueNet::new(&game("sort3"), 16, 5)
        .unwrap()
        .save(&stem)
        .unwrap();
    let weights = stem.with_extension("safetensors");
    let bin = env!("CARGO_BIN_EXE_superopt");
    let logs = dir.path().join("logs");
    let o = std::process::Command::new(bin)
        .args([
            "search",
            "sort3",
            "--budget",
            "120s",
            "--threads",
            "1",
            "--target",
            "18",
            "--json",
            "--net",
        ])
        .arg(&weights)
        .arg("--log-dir")
        .arg(&logs)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v["log"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        log["config"]["evaluator"],
        format!("net:{}", weights.display())
    );
    let o = std::process::Command::new(bin)
        .args(["search", "sort4", "--budget", "1s", "--net"])
        .arg(&weights)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("the net was trained for another move table"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

/// A short self-play run writes a checkpoint that reloads, with its training counts, and a
/// learning curve with one row per episode.
#[test]
fn self_play_training_writes_a_reloadable_checkpoint_and_a_curve() {
    use superopt::net::train::{train, write_curve_csv, TrainConfig};
    let g = game("sort3");
    let mut net = PolicyValueNet::new(&g, 16, 2).unwrap();
    let cfg = TrainConfig {
        max_episodes: Some(6),
        simulations: 20,
        batch: 8,
        seed: 2,
        ..TrainConfig::default()
    };
    let mut seen = 0;
    let curve = train(&g, &mut net, &cfg, &AtomicBool::new(false), |_| seen += 1).unwrap();
    assert_eq!((curve.len(), seen), (6, 6));
    assert_eq!(
        curve.last().unwrap().step,
        12,
        "two learner steps per episode"
    );
    assert!(curve
        .iter()
        .all(|p| p.policy_loss.is_finite() && p.value_loss.is_finite()));
    assert_eq!(net.meta().steps, 12);
    assert!(net.meta().samples > 0);
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("sort3-selfplay");
    net.save(&stem).unwrap();
    write_curve_csv(&curve, &stem.with_extension("csv")).unwrap();
    assert_eq!(PolicyValueNet::load(&g, &stem).unwrap().meta(), net.meta());
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);
    assert!(csv.starts_with("episode,step,elapsed_s,policy_loss,value_loss,best_length\n"));
}
