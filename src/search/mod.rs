//! Search over any single-player game with a fixed move table: Monte-Carlo tree search with
//! PUCT (the default, as in AlphaDev), and a weighted A* over the same game for side-by-side
//! comparison.
//!
//! This module knows nothing of x86: a game plugs in through [`Environment`] (states, legal
//! actions, a sound lower bound, a transposition key) and priors and leaf values come from an
//! [`Evaluator`] (a heuristic now, a policy/value network later). Costs are integers (program
//! length in instructions); a lower cost is better.

mod astar;
mod lns;
mod mcts;
pub mod record;

pub use astar::{astar, astar_from};
pub use lns::lns;
pub use mcts::{mcts, play_episode, Episode, EpisodeStep, MctsConfig};
pub use record::{RngState, SearchStats, SearchTree, TreeSnapshot};

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Index of an action (move) in the environment's move table.
pub type Action = u16;

/// A single-player game with costs. Implemented by [`crate::game::SortGame`].
pub trait Environment: Sync {
    /// A state of the game. Cloned along search paths; keep it compact.
    type State: Clone + Send + Sync;

    /// The state before the first move.
    fn initial(&self) -> Self::State;
    /// Number of entries in the move table (size of the policy).
    fn num_actions(&self) -> usize;
    /// Appends the legal actions of `s` to `out`. Implementations apply only *sound* pruning:
    /// an action they leave out never begins the only cheapest completion. An empty list means
    /// a dead end.
    fn legal_actions(&self, s: &Self::State, out: &mut Vec<Action>);
    /// The state after playing `a` in `s`; `None` when the move turns out illegal or leads to a
    /// state that can never be completed (both are sound pruning).
    fn step(&self, s: &Self::State, a: Action) -> Option<Self::State>;
    /// Cost of the moves so far.
    fn cost(&self, s: &Self::State) -> u32;
    /// If `s` is a solution, the total cost of the finished artefact (which may add fixed costs,
    /// e.g. the stores of a kernel).
    fn solution_cost(&self, s: &Self::State) -> Option<u32>;
    /// A lower bound on the cost still to pay before a solution: admissible, used to prune.
    fn lower_bound(&self, s: &Self::State) -> u32;
    /// An estimate of the cost still to pay (need not be admissible), used by heuristic
    /// evaluators and A*.
    fn estimate(&self, s: &Self::State) -> f32 {
        self.lower_bound(s) as f32
    }
    /// Human-readable text of an action, for logs and replays.
    fn describe(&self, a: Action) -> String {
        format!("action {a}")
    }
    /// A cap on the cost of any solution worth finding (states that cannot beat it are
    /// pruned until a solution is known).
    fn max_cost(&self) -> u32 {
        u32::MAX
    }
    /// A key equal for states with the same future (e.g. equal up to symmetry).
    fn key(&self, s: &Self::State) -> u64;
    /// The total cost that maps to value 0 (anything at least this long is worthless). Values
    /// are `1 - total / value_scale`, clamped to `[0, 1]`.
    fn value_scale(&self) -> f32;
}

/// Priors and value for one state.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// One prior per legal action, in the order given, summing to 1.
    pub priors: Vec<f32>,
    /// Estimated value of the state in `[0, 1]` (see [`Environment::value_scale`]).
    pub value: f32,
}

/// Supplies priors and leaf values to the search. Batched, so a network can evaluate many
/// leaves in one forward pass.
pub trait Evaluator<E: Environment>: Sync {
    /// A short name for logs (`uniform`, `heuristic`, `net:sort3-v1`).
    fn name(&self) -> String;
    /// Evaluates `states[i]` whose legal actions are `actions[i]`.
    fn evaluate(&self, env: &E, states: &[&E::State], actions: &[&[Action]]) -> Vec<Evaluation>;
}

/// A reference to an evaluator evaluates as it does (so evaluators can be combined by
/// reference, e.g. in a [`ProductEvaluator`]).
impl<E: Environment, T: Evaluator<E> + ?Sized> Evaluator<E> for &T {
    fn name(&self) -> String {
        (**self).name()
    }
    fn evaluate(&self, env: &E, states: &[&E::State], actions: &[&[Action]]) -> Vec<Evaluation> {
        (**self).evaluate(env, states, actions)
    }
}

/// Uniform priors; the value is derived from the environment's estimate. The baseline
/// evaluator ("no network").
pub struct UniformEvaluator;

impl<E: Environment> Evaluator<E> for UniformEvaluator {
    fn name(&self) -> String {
        "uniform".into()
    }
    fn evaluate(&self, env: &E, states: &[&E::State], actions: &[&[Action]]) -> Vec<Evaluation> {
        states
            .iter()
            .zip(actions)
            .map(|(s, a)| Evaluation {
                priors: vec![1.0 / a.len().max(1) as f32; a.len()],
                value: value_of(env, env.cost(s) as f32 + env.estimate(s)),
            })
            .collect()
    }
}

/// Priors from a one-step look-ahead: `softmax(-estimate(child) / temperature)`; the value is
/// derived from the environment's estimate.
pub struct HeuristicEvaluator {
    /// Softmax temperature in cost units (instructions). Lower is greedier.
    pub temperature: f32,
}

impl<E: Environment> Evaluator<E> for HeuristicEvaluator {
    fn name(&self) -> String {
        "heuristic".into()
    }
    fn evaluate(&self, env: &E, states: &[&E::State], actions: &[&[Action]]) -> Vec<Evaluation> {
        states
            .iter()
            .zip(actions)
            .map(|(s, acts)| {
                let base = env.cost(s) as f32;
                let scores: Vec<f32> = acts
                    .iter()
                    .map(|&a| match env.step(s, a) {
                        Some(c) => {
                            -(env.cost(&c) as f32 - base + env.estimate(&c)) / self.temperature
                        }
                        None => f32::NEG_INFINITY,
                    })
                    .collect();
                Evaluation {
                    priors: softmax(&scores),
                    value: value_of(env, base + env.estimate(s)),
                }
            })
            .collect()
    }
}

/// Two evaluators' priors multiplied, `p ∝ p_a · p_b^weight` (a product of experts: Hinton,
/// "Training products of experts by minimizing contrastive divergence", Neural Computation
/// 14:1771, 2002), with `a`'s values. A move either expert finds unlikely stays unlikely;
/// with a policy network as `a` and [`HeuristicEvaluator`] as `b`, the search keeps the
/// net's preferences among the moves the look-ahead rates well (BENCHMARKS.md, "Learning").
pub struct ProductEvaluator<A, B> {
    /// The first expert; its values are used.
    pub a: A,
    /// The second expert (priors only).
    pub b: B,
    /// Exponent of `b`'s priors (1: an equal product; 0: `a` alone).
    pub weight: f32,
}

impl<E: Environment, A: Evaluator<E>, B: Evaluator<E>> Evaluator<E> for ProductEvaluator<A, B> {
    fn name(&self) -> String {
        format!("{} x {}", self.a.name(), self.b.name())
    }
    fn evaluate(&self, env: &E, states: &[&E::State], actions: &[&[Action]]) -> Vec<Evaluation> {
        let ea = self.a.evaluate(env, states, actions);
        let eb = self.b.evaluate(env, states, actions);
        ea.into_iter()
            .zip(eb)
            .map(|(x, y)| {
                // In log space; a zero prior stays (practically) zero.
                let logits: Vec<f32> = x
                    .priors
                    .iter()
                    .zip(&y.priors)
                    .map(|(p, q)| p.max(1e-30).ln() + self.weight * q.max(1e-30).ln())
                    .collect();
                Evaluation {
                    priors: softmax(&logits),
                    value: x.value,
                }
            })
            .collect()
    }
}

/// Value in `[0, 1]` of a total cost, `1 - total / value_scale`.
pub fn value_of<E: Environment + ?Sized>(env: &E, total: f32) -> f32 {
    (1.0 - total / env.value_scale()).clamp(0.0, 1.0)
}

/// Softmax of `x` (uniform when every entry is -inf).
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        return vec![1.0 / x.len().max(1) as f32; x.len()];
    }
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// When to stop.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Wall-clock limit.
    pub time: Duration,
    /// Stop as soon as a solution of at most this cost is found (e.g. a known optimum).
    pub target: Option<u32>,
    /// Stop after this many expansions in total (for tests and reproducible runs).
    pub max_expansions: Option<u64>,
}

/// Why a search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The time budget ran out.
    Budget,
    /// The expansion limit was reached.
    Expansions,
    /// A solution at or below the target cost was found.
    Target,
    /// The whole space within the bound was searched: the best solution is optimal for the
    /// searched space.
    Exhausted,
    /// Ctrl-C or another request to stop.
    Interrupted,
}

/// A solution found during a search.
#[derive(Clone, Debug)]
pub struct Found<A> {
    /// Total cost.
    pub cost: u32,
    /// Seconds since the search started.
    pub at_s: f64,
    /// Expansions (programs explored) before it was found.
    pub explored: u64,
    /// The solution's actions from the initial state.
    pub actions: A,
}

/// What a search records beside its solutions: the merged tree (when asked for), the
/// counters and each worker's random stream, under one lock so that a checkpoint sees them
/// agree (an episode's tree, counts and the stream after it arrive together).
#[derive(Default)]
struct Record {
    tree: Option<SearchTree>,
    stats: SearchStats,
    rngs: Vec<Option<RngState>>,
}

/// Where a resumed search starts from: what the saved search had done (see
/// [`Shared::resume`]).
#[derive(Clone, Debug, Default)]
pub struct ResumePoint {
    /// Seconds the saved search had run.
    pub elapsed_s: f64,
    /// Programs it had explored.
    pub explored: u64,
    /// Its improvements, in order (their costs set the branch-and-bound bound at once).
    pub found: Vec<Found<Vec<Action>>>,
    /// Its merged tree, if it recorded one.
    pub tree: Option<SearchTree>,
    /// Its counters.
    pub stats: SearchStats,
    /// Each worker's random stream where it stopped (`None`: start from the seed).
    pub rngs: Vec<Option<RngState>>,
}

/// State shared by all search threads: the best cost (for branch and bound), counters, the
/// stop flag and the solutions found in order of improvement.
pub struct Shared {
    start: Instant,
    /// Seconds run before this process (a resumed search).
    offset_s: f64,
    best: AtomicU32,
    explored: AtomicU64,
    stop: Arc<AtomicBool>,
    found: Mutex<Vec<Found<Vec<Action>>>>,
    budget: Budget,
    exhausted: AtomicBool,
    /// Solutions within `margin` of the best, kept for a second opinion (see
    /// [`Shared::keep_near_best`]): `(margin, capacity)`, and the solutions by cost.
    near: Option<(u32, usize)>,
    near_best: Mutex<Vec<Found<Vec<Action>>>>,
    record: Mutex<Record>,
    /// Random streams handed to the workers of a resumed search, by worker.
    resume_rngs: Mutex<Vec<Option<rand_chacha::ChaCha8Rng>>>,
}

impl Shared {
    /// New shared state; `stop` may be set from a Ctrl-C handler.
    pub fn new(budget: Budget, stop: Arc<AtomicBool>) -> Shared {
        Shared {
            start: Instant::now(),
            offset_s: 0.0,
            best: AtomicU32::new(u32::MAX),
            explored: AtomicU64::new(0),
            stop,
            found: Mutex::new(Vec::new()),
            budget,
            exhausted: AtomicBool::new(false),
            near: None,
            near_best: Mutex::new(Vec::new()),
            record: Mutex::new(Record::default()),
            resume_rngs: Mutex::new(Vec::new()),
        }
    }

    /// Also merges the MCTS episodes into a [`SearchTree`] of at most `capacity` nodes (for
    /// the search log and `--resume`).
    pub fn record_tree(self, capacity: usize) -> Shared {
        self.record.lock().unwrap().tree = Some(SearchTree::new(capacity));
        self
    }

    /// Continues a saved search: its elapsed time and programs explored carry on, its
    /// improvements are known from the start (so its best cost bounds the search at once, and
    /// nothing it found is lost), its tree (if this search records one) and counters keep
    /// growing, and worker `i` continues random stream `rngs[i]`. The budget counts from now.
    pub fn resume(mut self, from: ResumePoint) -> Shared {
        self.offset_s = from.elapsed_s;
        self.explored.store(from.explored, Ordering::Relaxed);
        if let Some(best) = from.found.iter().map(|f| f.cost).min() {
            self.best.store(best, Ordering::Relaxed);
        }
        *self.found.lock().unwrap() = from.found;
        {
            let mut r = self.record.lock().unwrap();
            if r.tree.is_some() {
                if let Some(t) = from.tree {
                    r.tree = Some(t);
                }
            }
            r.stats = from.stats;
            r.rngs = from.rngs.clone();
        }
        *self.resume_rngs.lock().unwrap() = from
            .rngs
            .iter()
            .map(|r| r.as_ref().and_then(RngState::restore))
            .collect();
        self
    }

    /// The random stream worker `worker` continues, when resuming (taken once).
    pub fn take_rng(&self, worker: usize) -> Option<rand_chacha::ChaCha8Rng> {
        self.resume_rngs
            .lock()
            .unwrap()
            .get_mut(worker)
            .and_then(Option::take)
    }

    /// Ends an episode of worker `worker` (complete, or cut short by a stop): merges its
    /// tree (through `merge`, when a tree is recorded) and counters, and notes the worker's
    /// random stream after it, all under one lock.
    pub(crate) fn end_episode(
        &self,
        worker: usize,
        rng: &rand_chacha::ChaCha8Rng,
        stats: &SearchStats,
        merge: impl FnOnce(&mut SearchTree),
    ) {
        let mut r = self.record.lock().unwrap();
        if let Some(t) = r.tree.as_mut() {
            merge(t);
            t.enforce_capacity();
        }
        r.stats.add(stats);
        if r.rngs.len() <= worker {
            r.rngs.resize(worker + 1, None);
        }
        r.rngs[worker] = Some(RngState::of(rng));
    }

    /// Adds counters of a search that plays no episodes (A*).
    pub(crate) fn add_stats(&self, stats: &SearchStats) {
        self.record.lock().unwrap().stats.add(stats);
    }

    /// The counters so far.
    pub fn stats(&self) -> SearchStats {
        self.record.lock().unwrap().stats.clone()
    }

    /// Each worker's random stream after its last finished episode (`None` for a worker that
    /// has not finished one).
    pub fn worker_rngs(&self) -> Vec<Option<RngState>> {
        self.record.lock().unwrap().rngs.clone()
    }

    /// The merged tree for a log (see [`SearchTree::snapshot`]), with the counters and
    /// random streams of the same moment; the tree is `None` when none is recorded.
    pub fn snapshot(
        &self,
        min_visits: u64,
        max_nodes: usize,
        describe: impl Fn(Action) -> String,
    ) -> (Option<TreeSnapshot>, SearchStats, Vec<Option<RngState>>) {
        let r = self.record.lock().unwrap();
        (
            r.tree
                .as_ref()
                .map(|t| t.snapshot(min_visits, max_nodes, describe)),
            r.stats.clone(),
            r.rngs.clone(),
        )
    }

    /// Also keeps up to `capacity` distinct solutions whose cost is within `margin` of the
    /// best at the time they are found (cheapest first), for a caller that ranks finalists
    /// by a costlier measure than the search's cost (e.g. measured latency).
    pub fn keep_near_best(mut self, margin: u32, capacity: usize) -> Shared {
        self.near = Some((margin, capacity));
        self
    }

    /// The solutions kept by [`Shared::keep_near_best`], cheapest first, with the improvements
    /// among them; empty without it.
    pub fn near_best(&self) -> Vec<Found<Vec<Action>>> {
        self.near_best.lock().unwrap().clone()
    }
    /// Best total cost so far (`u32::MAX` when none).
    pub fn best(&self) -> u32 {
        self.best.load(Ordering::Relaxed)
    }
    /// Expansions so far, all threads.
    pub fn explored(&self) -> u64 {
        self.explored.load(Ordering::Relaxed)
    }
    /// Seconds since the start, plus those of the saved search when resuming.
    pub fn elapsed(&self) -> f64 {
        self.offset_s + self.start.elapsed().as_secs_f64()
    }
    /// Seconds since this process started searching (what the budget counts).
    pub fn run_elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    /// Solutions in order of improvement.
    pub fn found(&self) -> Vec<Found<Vec<Action>>> {
        self.found.lock().unwrap().clone()
    }
    fn count(&self, n: u64) {
        self.explored.fetch_add(n, Ordering::Relaxed);
    }
    /// Starts the search with a known solution as its incumbent (e.g. the classic sorting
    /// network), recorded like a found one; returns whether it improved the best.
    pub fn seed(&self, cost: u32, actions: &[Action]) -> bool {
        self.offer(cost, actions)
    }

    /// Records a solution if it improves the best; returns whether it did.
    fn offer(&self, cost: u32, actions: &[Action]) -> bool {
        if let Some((margin, capacity)) = self.near {
            if cost <= self.best().saturating_add(margin) {
                let mut near = self.near_best.lock().unwrap();
                if !near.iter().any(|f| f.actions == actions) {
                    let at = near.partition_point(|f| f.cost <= cost);
                    near.insert(
                        at,
                        Found {
                            cost,
                            at_s: self.elapsed(),
                            explored: self.explored(),
                            actions: actions.to_vec(),
                        },
                    );
                    near.truncate(capacity);
                }
            }
        }
        let mut found = self.found.lock().unwrap();
        if cost >= self.best() {
            return false;
        }
        self.best.store(cost, Ordering::Relaxed);
        found.push(Found {
            cost,
            at_s: self.elapsed(),
            explored: self.explored(),
            actions: actions.to_vec(),
        });
        if let Some(t) = self.record.lock().unwrap().tree.as_mut() {
            t.add_solution(actions, cost, found.len() as u32 - 1);
        }
        true
    }
    /// Records that a worker searched its whole space under the bound: the best solution is
    /// optimal for the searched space, and every worker stops.
    pub fn mark_exhausted(&self) {
        self.exhausted.store(true, Ordering::Relaxed);
    }
    /// Whether to stop now, and why.
    pub fn should_stop(&self) -> Option<StopReason> {
        if self.exhausted.load(Ordering::Relaxed) {
            return Some(StopReason::Exhausted);
        }
        if self.stop.load(Ordering::Relaxed) {
            return Some(StopReason::Interrupted);
        }
        if self.best() != u32::MAX && self.budget.target.is_some_and(|t| self.best() <= t) {
            return Some(StopReason::Target);
        }
        if self
            .budget
            .max_expansions
            .is_some_and(|m| self.explored() >= m)
        {
            return Some(StopReason::Expansions);
        }
        if self.start.elapsed() >= self.budget.time {
            return Some(StopReason::Budget);
        }
        None
    }
}

/// FNV-style 64-bit hash over bytes, 8 at a time (fast, not cryptographic).
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ x).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    mix64(h ^ bytes.len() as u64)
}

/// A 64-bit finaliser (splitmix64).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
