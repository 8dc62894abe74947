//! Self-play training (AlphaZero's loop as AlphaDev uses it, Nature 618:257, 2023, Methods):
//! an actor plays MCTS episodes guided by the current net and writes, for every committed
//! move, (state, root visit distribution, episode return) into a replay buffer; a learner
//! takes AdamW steps on minibatches from it (policy cross-entropy + value squared error;
//! weight decay in AdamW).
//!
//! First version: one actor and the learner take turns on one thread; root noise is the
//! search's relative prior noise rather than Dirichlet noise; moves are committed greedily
//! (no temperature schedule). The return of an episode is the value of the cheapest kernel it
//! reached (`1 - L / value_scale`), or 0.

use super::PolicyValueNet;
use crate::error::{Error, Result};
use crate::game::{GameState, SortGame};
use crate::search::{play_episode, value_of, Budget, MctsConfig, Shared};
use candle_core::{Tensor, D};
use candle_nn::Optimizer;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Wall-clock budget.
    pub budget: Duration,
    /// Stop after this many episodes (for tests and reproducible runs).
    pub max_episodes: Option<u64>,
    /// MCTS simulations per committed move.
    pub simulations: u32,
    /// Minibatch size (states).
    pub batch: usize,
    /// Learner steps after each episode.
    pub steps_per_episode: usize,
    /// Replay buffer capacity (samples); the oldest are dropped first.
    pub buffer: usize,
    /// AdamW learning rate and weight decay.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed for episodes and minibatch sampling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            budget: Duration::from_secs(60),
            max_episodes: None,
            simulations: 50,
            batch: 32,
            steps_per_episode: 2,
            buffer: 20_000,
            lr: 1e-3,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

/// One row of the learning curve, written after every episode.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CurvePoint {
    /// Episodes played so far.
    pub episode: u64,
    /// Learner steps so far.
    pub step: u64,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Policy cross-entropy of the last minibatch.
    pub policy_loss: f32,
    /// Value squared error of the last minibatch.
    pub value_loss: f32,
    /// Shortest kernel any episode reached so far (instructions), 0 if none.
    pub best_length: u32,
}

struct Sample {
    state: GameState,
    /// Visit distribution over the whole move table (sparse: action, probability).
    policy: Vec<(u16, f32)>,
    value: f32,
}

/// Trains `net` on `game` by self-play; calls `progress` after every episode and returns the
/// learning curve. Updates the net's step and sample counts.
///
/// Errors: a failed tensor operation ([`Error::Runtime`]).
pub fn train(
    game: &SortGame,
    net: &mut PolicyValueNet,
    cfg: &TrainConfig,
    stop: &AtomicBool,
    mut progress: impl FnMut(&CurvePoint),
) -> Result<Vec<CurvePoint>> {
    use crate::search::Environment;
    let ce = |e: candle_core::Error| Error::Runtime(format!("training: {e}"));
    let start = Instant::now();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut opt = candle_nn::AdamW::new(
        net.vars(),
        candle_nn::ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )
    .map_err(ce)?;
    let mcts_cfg = MctsConfig {
        c_puct: 0.1,
        simulations: cfg.simulations,
        seed: cfg.seed,
        ..MctsConfig::default()
    };
    let mut buffer: VecDeque<Sample> = VecDeque::new();
    let mut curve = Vec::new();
    let (mut episodes, mut steps, mut samples, mut best) = (0u64, 0u64, 0u64, u32::MAX);
    while start.elapsed() < cfg.budget
        && cfg.max_episodes.map_or(true, |m| episodes < m)
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        // Actor: one episode with a fresh bound, so that every episode can reach a kernel.
        let shared = Shared::new(
            Budget {
                time: cfg.budget.saturating_sub(start.elapsed()),
                target: None,
                max_expansions: None,
            },
            Arc::new(AtomicBool::new(false)),
        );
        let Ok(ep) = play_episode(game, &*net, &mcts_cfg, &shared, &mut rng, true) else {
            break;
        };
        episodes += 1;
        let ret = ep.solution_cost.map_or(0.0, |c| value_of(game, c as f32));
        if let Some(c) = ep.solution_cost {
            best = best.min(c);
        }
        for step in ep.steps {
            let total: u32 = step.visits.iter().sum();
            let policy = step
                .actions
                .iter()
                .zip(&step.visits)
                .map(|(&a, &v)| (a, v as f32 / total.max(1) as f32))
                .collect();
            buffer.push_back(Sample {
                state: step.state,
                policy,
                value: ret,
            });
            samples += 1;
            if buffer.len() > cfg.buffer {
                buffer.pop_front();
            }
        }
        // Learner.
        let (mut pl, mut vl) = (f32::NAN, f32::NAN);
        for _ in 0..cfg.steps_per_episode {
            if buffer.is_empty() {
                break;
            }
            let idx: Vec<usize> = (0..cfg.batch.min(buffer.len()))
                .map(|_| rng.gen_range(0..buffer.len()))
                .collect();
            let states: Vec<&GameState> = idx.iter().map(|&i| &buffer[i].state).collect();
            let (x, p) = net.features(&states)?;
            let out = net.forward(&x, &p)?;
            let m = game.num_actions();
            let mut target = vec![0f32; idx.len() * m];
            for (b, &i) in idx.iter().enumerate() {
                for &(a, q) in &buffer[i].policy {
                    target[b * m + a as usize] = q;
                }
            }
            let target = Tensor::from_vec(target, (idx.len(), m), x.device()).map_err(ce)?;
            let values: Vec<f32> = idx.iter().map(|&i| buffer[i].value).collect();
            let values = Tensor::from_vec(values, idx.len(), x.device()).map_err(ce)?;
            let logp = candle_nn::ops::log_softmax(&out.logits, D::Minus1).map_err(ce)?;
            let policy_loss = (target * logp)
                .and_then(|t| t.sum(D::Minus1))
                .and_then(|t| t.mean_all())
                .and_then(|t| t.neg())
                .map_err(ce)?;
            let value_loss = (out.values - values)
                .and_then(|d| d.sqr())
                .and_then(|d| d.mean_all())
                .map_err(ce)?;
            let loss = (&policy_loss + &value_loss).map_err(ce)?;
            opt.backward_step(&loss).map_err(ce)?;
            pl = policy_loss.to_scalar::<f32>().map_err(ce)?;
            vl = value_loss.to_scalar::<f32>().map_err(ce)?;
            steps += 1;
        }
        let point = CurvePoint {
            episode: episodes,
            step: steps,
            elapsed_s: start.elapsed().as_secs_f64(),
            policy_loss: pl,
            value_loss: vl,
            best_length: if best == u32::MAX { 0 } else { best },
        };
        progress(&point);
        curve.push(point);
    }
    net.record_training(steps, samples, &game.task().name);
    Ok(curve)
}

/// Writes the learning curve as CSV (`episode,step,elapsed_s,policy_loss,value_loss,best_length`).
///
/// Errors: [`Error::Io`] naming the path.
pub fn write_curve_csv(curve: &[CurvePoint], path: &std::path::Path) -> Result<()> {
    let mut text = String::from("episode,step,elapsed_s,policy_loss,value_loss,best_length\n");
    for p in curve {
        text.push_str(&format!(
            "{},{},{:.3},{},{},{}\n",
            p.episode, p.step, p.elapsed_s, p.policy_loss, p.value_loss, p.best_length
        ));
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
