//! Self-play training (AlphaZero's loop as AlphaDev uses it, Nature 618:257, 2023, Methods):
//! actors play MCTS episodes guided by the current net and write, for every committed move,
//! (state, root visit distribution, episode return) into a replay buffer; a learner takes
//! AdamW steps on minibatches from it (policy cross-entropy + value squared error; weight
//! decay in AdamW).
//!
//! Rounds alternate: `actors` episodes in parallel on the rayon pool with the net frozen, then
//! `steps_per_episode x episodes` learner steps. Exploration, as in AlphaZero (Silver et al.,
//! Science 362:1140, 2018): Dirichlet noise on each root's priors and, for the first
//! `temperature_moves` moves of an episode, moves sampled in proportion to visit counts. The
//! return of an episode is the value of the cheapest kernel it reached (`1 - L / value_scale`,
//! [`crate::search::value_of`]), or 0. With several tasks, episodes and minibatches go round
//! the tasks in turn, each task with its own replay buffer.

use super::{NetEvaluation, PolicyValueNet, ValueSource};
use crate::error::{Error, Result};
use crate::game::{GameState, SortGame};
use crate::search::{mcts, play_episode, value_of, Action, Budget, MctsConfig, Shared};
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
    /// PUCT exploration constant of the actors.
    pub c_puct: f32,
    /// Episodes played in parallel per round (the actors).
    pub actors: usize,
    /// Minibatch size (states).
    pub batch: usize,
    /// Learner steps per episode played.
    pub steps_per_episode: usize,
    /// Replay buffer capacity per task (samples); the oldest are dropped first.
    pub buffer: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Root Dirichlet noise `(alpha, weight)`.
    pub dirichlet: (f32, f32),
    /// Moves per episode committed with temperature 1.
    pub temperature_moves: u32,
    /// Leaf values of the actors' searches.
    pub value_source: ValueSource,
    /// Leaves per network evaluation in the actors' searches.
    pub leaf_batch: u32,
    /// Temperature of the policy target, in instructions ([`policy_target`]).
    pub target_temperature: f32,
    /// Seed for episodes and minibatch sampling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            budget: Duration::from_secs(60),
            max_episodes: None,
            simulations: 50,
            c_puct: 0.1,
            actors: 2,
            batch: 64,
            steps_per_episode: 2,
            buffer: 20_000,
            lr: 3e-4,
            weight_decay: 1e-4,
            dirichlet: (0.3, 0.25),
            temperature_moves: 4,
            value_source: ValueSource::Estimate,
            target_temperature: 1.0,
            leaf_batch: 1,
            seed: 0,
        }
    }
}

/// The random stream of self-play episode `index` of a training run with `seed`.
///
/// For seeds below 2^32 it is `ChaCha8Rng::seed_from_u64(mix64(seed * 0x9E37_79B9 + index))`
/// (as in earlier versions, so their runs replay): the key cannot wrap and distinct
/// `(seed, index)` give distinct keys for any index below 0x9E37_79B9 (2.6 billion
/// episodes). For larger seeds that product wraps, and seed `s + m` (`m` the inverse of the
/// multiplier modulo 2^64) would play episode `k + 1` of seed `s` as its episode `k`; those
/// seeds use the seed's own bytes as the key and stream `index + 1` (the small seeds use
/// stream 0), so distinct pairs give distinct streams for every seed.
fn episode_rng(seed: u64, index: u64) -> rand_chacha::ChaCha8Rng {
    if seed < 1 << 32 {
        return rand_chacha::ChaCha8Rng::seed_from_u64(crate::search::mix64(
            (seed * 0x9E37_79B9).wrapping_add(index),
        ));
    }
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(key);
    rng.set_stream(index.wrapping_add(1));
    rng
}

/// One row of the learning curve, written after every round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CurvePoint {
    /// Episodes played so far.
    pub episode: u64,
    /// Learner steps so far.
    pub step: u64,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Policy cross-entropy of the round's minibatches (mean).
    pub policy_loss: f32,
    /// Value squared error of the round's minibatches (mean).
    pub value_loss: f32,
    /// Per task, the shortest kernel any episode reached so far (instructions), 0 if none.
    pub best_length: Vec<u32>,
    /// Episodes per second so far.
    pub games_per_s: f64,
}

/// A training sample: a state where a move was committed, the visit distribution over its
/// root's actions and the episode's return.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The state.
    pub state: GameState,
    /// The root's actions (the policy's support).
    pub actions: Vec<Action>,
    /// Visit fractions, one per action, summing to 1.
    pub policy: Vec<f32>,
    /// The episode's return in `[0, 1]`.
    pub value: f32,
}

/// The policy target of a committed move: a softmax over the root's visited children of
/// their values `Q` expressed in instructions, `exp(-(L(child) - L(best)) / temperature)`;
/// unvisited children get 0. This is the completed-`Q` target of Gumbel MuZero (Danihelka
/// et al., "Policy improvement by planning with Gumbel", ICLR 2022) without its prior term,
/// used instead of AlphaZero's visit counts: at 50 simulations with max backup the visit
/// counts are close to uniform over the visited children and teach little.
pub fn policy_target(game: &SortGame, values: &[f32], temperature: f32) -> Vec<f32> {
    use crate::search::Environment;
    let scale = game.value_scale();
    let logits: Vec<f32> = values
        .iter()
        .map(|&q| {
            if q.is_nan() {
                f32::NEG_INFINITY
            } else {
                q * scale / temperature.max(1e-3)
            }
        })
        .collect();
    crate::search::softmax(&logits)
}

/// A failed tensor operation during training, as one line.
fn train_err(e: candle_core::Error) -> Error {
    Error::Runtime(format!("training: {}", super::first_line(&e)))
}

/// Policy cross-entropy and value squared error of `net` on `samples` of `game` (scalars,
/// averaged over the samples).
///
/// Errors: a failed tensor operation ([`Error::Runtime`]).
pub fn losses(
    net: &PolicyValueNet,
    game: &SortGame,
    samples: &[&Sample],
) -> Result<(Tensor, Tensor)> {
    let ce = train_err;
    let states: Vec<&GameState> = samples.iter().map(|s| &s.state).collect();
    let acts: Vec<&[Action]> = samples.iter().map(|s| s.actions.as_slice()).collect();
    let out = net.forward(game, &states, &acts)?;
    let b = samples.len();
    let amax = acts.iter().map(|a| a.len()).max().unwrap_or(1).max(1);
    let mut idx = vec![0u32; b * amax];
    let mut mask = vec![-1e9f32; b * amax];
    let mut target = vec![0f32; b * amax];
    let mut off = 0u32;
    for (i, s) in samples.iter().enumerate() {
        for (j, &q) in s.policy.iter().enumerate() {
            idx[i * amax + j] = off + j as u32;
            mask[i * amax + j] = 0.0;
            target[i * amax + j] = q;
        }
        off += s.actions.len() as u32;
    }
    let dev = out.values.device().clone();
    let idx = Tensor::from_vec(idx, b * amax, &dev).map_err(ce)?;
    let mask = Tensor::from_vec(mask, (b, amax), &dev).map_err(ce)?;
    let target = Tensor::from_vec(target, (b, amax), &dev).map_err(ce)?;
    let padded = out
        .logits
        .index_select(&idx, 0)
        .and_then(|l| l.reshape((b, amax)))
        .and_then(|l| l + mask)
        .map_err(ce)?;
    let logp = candle_nn::ops::log_softmax(&padded, D::Minus1).map_err(ce)?;
    let policy_loss = (target * logp)
        .and_then(|t| t.sum(D::Minus1))
        .and_then(|t| t.mean_all())
        .and_then(|t| t.neg())
        .map_err(ce)?;
    let values: Vec<f32> = samples.iter().map(|s| s.value).collect();
    let values = Tensor::from_vec(values, b, &dev).map_err(ce)?;
    let value_loss = (out.values - values)
        .and_then(|d| d.sqr())
        .and_then(|d| d.mean_all())
        .map_err(ce)?;
    Ok((policy_loss, value_loss))
}

/// Trains `net` on `games` by self-play; calls `progress` with the curve point and the net
/// after every round and returns the
/// learning curve. Updates the net's step, sample and time counts and its task list.
///
/// Errors: a task the net cannot serve, or a failed tensor operation ([`Error::Runtime`]).
pub fn train(
    games: &[SortGame],
    net: &mut PolicyValueNet,
    cfg: &TrainConfig,
    stop: &Arc<AtomicBool>,
    mut progress: impl FnMut(&CurvePoint, &PolicyValueNet),
) -> Result<Vec<CurvePoint>> {
    use rayon::prelude::*;
    let ce = train_err;
    if games.is_empty() {
        return Err(Error::Runtime("training needs at least one task".into()));
    }
    for g in games {
        net.check_task(g).map_err(Error::Runtime)?;
    }
    let meta = net.meta_mut();
    for g in games {
        if !meta.tasks.iter().any(|t| *t == g.task().name) {
            meta.tasks.push(g.task().name.clone());
        }
    }
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
        c_puct: cfg.c_puct,
        simulations: cfg.simulations,
        prior_noise: 0.0,
        max_backup: true,
        root_dirichlet: Some(cfg.dirichlet),
        temperature_moves: cfg.temperature_moves,
        leaf_batch: cfg.leaf_batch,
        seed: cfg.seed,
        worker: 0,
    };
    let saved_source = net.value_source;
    net.value_source = cfg.value_source;
    let mut buffers: Vec<VecDeque<Sample>> = games.iter().map(|_| VecDeque::new()).collect();
    let mut best = vec![u32::MAX; games.len()];
    let mut curve = Vec::new();
    let (mut episodes, mut steps) = (0u64, 0u64);
    let mut last_elapsed = 0.0;
    let actors = cfg.actors.max(1) as u64;
    while start.elapsed() < cfg.budget
        && cfg.max_episodes.map_or(true, |m| episodes < m)
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        // Actors: a round of episodes in parallel with the net frozen. Each episode has its
        // own seed and a fresh bound, so that every episode can reach a kernel.
        let round = cfg
            .max_episodes
            .map_or(actors, |m| actors.min(m - episodes));
        let frozen: &PolicyValueNet = net;
        let remaining = cfg.budget.saturating_sub(start.elapsed());
        let played: Vec<(usize, crate::search::Episode<GameState>)> = (0..round)
            .into_par_iter()
            .filter_map(|i| {
                let index = episodes + i;
                let task = (index % games.len() as u64) as usize;
                let mut ep_rng = episode_rng(cfg.seed, index);
                let shared = Shared::new(
                    Budget {
                        time: remaining,
                        target: None,
                        max_expansions: None,
                    },
                    stop.clone(),
                );
                play_episode(&games[task], frozen, &mcts_cfg, &shared, &mut ep_rng, true)
                    .ok()
                    .map(|ep| (task, ep))
            })
            .collect();
        if played.is_empty() {
            break;
        }
        episodes += round;
        for (task, ep) in &played {
            let game = &games[*task];
            let ret = ep.solution_cost.map_or(0.0, |c| value_of(game, c as f32));
            if let Some(c) = ep.solution_cost {
                best[*task] = best[*task].min(c);
            }
            for step in &ep.steps {
                buffers[*task].push_back(Sample {
                    state: step.state.clone(),
                    actions: step.actions.clone(),
                    policy: policy_target(game, &step.values, cfg.target_temperature),
                    value: ret,
                });
                if buffers[*task].len() > cfg.buffer {
                    buffers[*task].pop_front();
                }
            }
        }
        // Learner.
        let (mut pl, mut vl, mut counted) = (0f32, 0f32, 0u32);
        for k in 0..cfg.steps_per_episode * played.len() {
            let task = (steps as usize + k) % games.len();
            let buf = &buffers[task];
            if buf.is_empty() {
                continue;
            }
            let batch: Vec<&Sample> = (0..cfg.batch.min(buf.len()))
                .map(|_| &buf[rng.gen_range(0..buf.len())])
                .collect();
            let (policy_loss, value_loss) = losses(net, &games[task], &batch)?;
            let loss = (&policy_loss + &value_loss).map_err(ce)?;
            opt.backward_step(&loss).map_err(ce)?;
            pl += policy_loss.to_scalar::<f32>().map_err(ce)?;
            vl += value_loss.to_scalar::<f32>().map_err(ce)?;
            counted += 1;
        }
        steps += u64::from(counted);
        let elapsed = start.elapsed().as_secs_f64();
        // Keep the metadata current, so that checkpoints written during training are right.
        let added: u64 = played.iter().map(|(_, ep)| ep.steps.len() as u64).sum();
        let meta = net.meta_mut();
        meta.steps += u64::from(counted);
        meta.samples += added;
        meta.trained_s += elapsed - last_elapsed;
        last_elapsed = elapsed;
        let point = CurvePoint {
            episode: episodes,
            step: steps,
            elapsed_s: elapsed,
            policy_loss: if counted > 0 {
                pl / counted as f32
            } else {
                f32::NAN
            },
            value_loss: if counted > 0 {
                vl / counted as f32
            } else {
                f32::NAN
            },
            best_length: best
                .iter()
                .map(|&b| if b == u32::MAX { 0 } else { b })
                .collect(),
            games_per_s: episodes as f64 / elapsed.max(1e-9),
        };
        progress(&point, net);
        curve.push(point);
    }
    net.value_source = saved_source;
    Ok(curve)
}

/// Searches `game` with MCTS guided by `net` (one thread, seed 0, the search's default
/// settings) for a kernel of `target` instructions, for at most `budget` or `max_programs`
/// programs explored; returns what it reached.
pub fn evaluate(
    game: &SortGame,
    net: &PolicyValueNet,
    target: u32,
    budget: Duration,
    max_programs: u64,
) -> NetEvaluation {
    let cfg = MctsConfig {
        c_puct: 0.1,
        simulations: 50,
        ..MctsConfig::default()
    };
    let shared = Shared::new(
        Budget {
            time: budget,
            target: Some(target),
            max_expansions: Some(max_programs),
        },
        Arc::new(AtomicBool::new(false)),
    );
    mcts(game, net, &cfg, &shared);
    let found = shared.found();
    let hit = found.iter().find(|f| f.cost <= target);
    NetEvaluation {
        task: game.task().name.clone(),
        target,
        best: found.last().map_or(0, |f| f.cost),
        programs: hit.map_or(shared.explored(), |f| f.explored),
        seconds: shared.elapsed(),
    }
}

/// Writes the learning curve as CSV: `episode,step,elapsed_s,policy_loss,value_loss,
/// games_per_s` and one `best_<task>` column per task (instructions, 0 = none yet).
///
/// Errors: [`Error::Io`] naming the path.
pub fn write_curve_csv(
    curve: &[CurvePoint],
    tasks: &[String],
    path: &std::path::Path,
) -> Result<()> {
    let mut text = String::from("episode,step,elapsed_s,policy_loss,value_loss,games_per_s");
    for t in tasks {
        text.push_str(&format!(",best_{t}"));
    }
    text.push('\n');
    for p in curve {
        text.push_str(&format!(
            "{},{},{:.3},{},{},{:.3}",
            p.episode, p.step, p.elapsed_s, p.policy_loss, p.value_loss, p.games_per_s
        ));
        for b in &p.best_length {
            text.push_str(&format!(",{b}"));
        }
        text.push('\n');
    }
    crate::log::write_atomic_with(path, |tmp| {
        std::fs::write(tmp, &text).map_err(|e| Error::io(path, e))
    })
}

/// Draws the learning curve as a PNG: losses against learner steps above, best length per
/// task below.
///
/// Errors: [`Error::Runtime`] when no font is available or drawing fails; [`Error::Io`].
pub fn write_curve_png(
    curve: &[CurvePoint],
    tasks: &[String],
    path: &std::path::Path,
) -> Result<()> {
    use crate::plot::{line_chart, Panel, Series};
    let pts = |f: &dyn Fn(&CurvePoint) -> f64| -> Vec<(f64, f64)> {
        curve
            .iter()
            .filter(|p| f(p).is_finite())
            .map(|p| (p.step as f64, f(p)))
            .collect()
    };
    let losses = Panel {
        y_label: "loss".into(),
        integer_y: false,
        series: vec![
            Series {
                name: "policy cross-entropy".into(),
                points: pts(&|p| f64::from(p.policy_loss)),
            },
            Series {
                name: "value squared error".into(),
                points: pts(&|p| f64::from(p.value_loss)),
            },
        ],
    };
    let best = Panel {
        y_label: "best length (instructions)".into(),
        integer_y: true,
        series: tasks
            .iter()
            .enumerate()
            .map(|(i, t)| Series {
                name: t.clone(),
                points: curve
                    .iter()
                    .filter(|p| p.best_length.get(i).is_some_and(|&b| b > 0))
                    .map(|p| (p.step as f64, f64::from(p.best_length[i])))
                    .collect(),
            })
            .collect(),
    };
    line_chart(
        path,
        &format!("superopt train {}", tasks.join(" ")),
        "learner steps",
        &[losses, best],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn first_words(mut rng: rand_chacha::ChaCha8Rng) -> [u64; 4] {
        [
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
        ]
    }

    #[test]
    fn episode_streams_of_small_seeds_are_unchanged_and_large_seeds_do_not_share_them() {
        // Seeds below 2^32: the streams of earlier versions.
        for (seed, index) in [(0u64, 0u64), (1, 0), (3, 17), ((1 << 32) - 1, 5)] {
            let old = rand_chacha::ChaCha8Rng::seed_from_u64(crate::search::mix64(
                seed.wrapping_mul(0x9E37_79B9).wrapping_add(index),
            ));
            assert_eq!(first_words(episode_rng(seed, index)), first_words(old));
        }
        // The inverse of the multiplier modulo 2^64 (Newton's iteration).
        let c: u64 = 0x9E37_79B9;
        let mut m: u64 = c;
        for _ in 0..6 {
            m = m.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(m)));
        }
        assert_eq!(c.wrapping_mul(m), 1);
        // With the old key, seed s + m played episode k + 1 of seed s as its episode k.
        let s = 1u64 << 40;
        let old = |seed: u64, index: u64| {
            first_words(rand_chacha::ChaCha8Rng::seed_from_u64(
                crate::search::mix64(seed.wrapping_mul(c).wrapping_add(index)),
            ))
        };
        assert_eq!(old(s.wrapping_add(m), 0), old(s, 1));
        assert_ne!(
            first_words(episode_rng(s.wrapping_add(m), 0)),
            first_words(episode_rng(s, 1))
        );
        // Large seeds: distinct pairs, distinct streams, none of them a small seed's.
        let mut seen = std::collections::HashSet::new();
        for seed in [0u64, 1, 1 << 32, 1 << 61, s, s.wrapping_add(m), u64::MAX] {
            for index in 0..4 {
                assert!(seen.insert(first_words(episode_rng(seed, index))));
            }
        }
    }
}
