//! Monte-Carlo tree search with PUCT (Silver et al., "Mastering the game of Go without human
//! knowledge", Nature 550:354, 2017), played in episodes as AlphaDev does (Nature 618:257,
//! 2023, Methods): from the current root, run `simulations` simulations, then commit to the
//! most visited child and continue from it (the subtree is kept) until the episode ends in a
//! solution or a dead end; then start a fresh episode with new prior noise. Additions for a
//! deterministic single-player game with integer costs:
//!
//! * **Branch and bound.** Once a solution of total cost `C` is known (by any thread), a node
//!   whose cost so far plus the environment's admissible lower bound reaches `C` is dead and
//!   never selected again. A node whose children are all dead is dead.
//! * **Transposition pruning.** Within an episode's tree, a child whose key was already
//!   generated at the same or a smaller cost is not added: the other node reaches the same
//!   futures at no greater cost.
//! * **Max backup** (optional, on by default): a node's `Q` is the best value seen below it,
//!   since in a deterministic game a node is worth its best continuation.
//!
//! Values are normalised by the minimum and maximum value seen in the tree before they enter
//! the PUCT formula (MuZero, Schrittwieser et al., Nature 588:604, 2020, Appendix B).

use super::{Action, Environment, Evaluator, SearchStats, SearchTree, Shared, StopReason};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// MCTS settings.
#[derive(Clone, Debug)]
pub struct MctsConfig {
    /// Exploration constant of PUCT (`c` in `Q + c * P * sqrt(N) / (1 + n)`).
    pub c_puct: f32,
    /// Simulations from each root before committing to a move (AlphaDev: 800).
    pub simulations: u32,
    /// Seed for prior noise and tie-breaking; equal seeds give equal searches.
    pub seed: u64,
    /// Relative noise mixed into priors at expansion (0 = none): `p * (1 + noise * u)`,
    /// `u` uniform in `[0, 1)`. Makes episodes differ.
    pub prior_noise: f32,
    /// Back up the best value seen below a node instead of the mean.
    pub max_backup: bool,
    /// Dirichlet noise mixed into the priors of each root's children, `(alpha, weight)`:
    /// `p = (1 - weight) p + weight d` with `d ~ Dir(alpha)` (AlphaZero, Silver et al.,
    /// Science 362:1140, 2018: alpha 0.3, weight 0.25). For self-play exploration.
    pub root_dirichlet: Option<(f32, f32)>,
    /// For this many committed moves of an episode, commit to a child sampled in proportion
    /// to its visit count (temperature 1) instead of the most visited one (temperature 0), as
    /// AlphaZero's self-play does for its opening moves. 0 = always the most visited.
    pub temperature_moves: u32,
    /// Leaves evaluated together in one [`Evaluator::evaluate`] call (a network's batch).
    /// Simulations of a batch see each other's leaves as visited (a virtual visit) but not
    /// their values. 1 = one simulation at a time.
    pub leaf_batch: u32,
    /// This worker's index in a root-parallel search: the slot of its random stream in the
    /// search's record (see [`super::Shared::worker_rngs`]).
    pub worker: usize,
}

impl Default for MctsConfig {
    fn default() -> Self {
        MctsConfig {
            c_puct: 1.25,
            simulations: 200,
            seed: 0,
            prior_noise: 0.5,
            max_backup: true,
            root_dirichlet: None,
            temperature_moves: 0,
            leaf_batch: 1,
            worker: 0,
        }
    }
}

const UNEXPANDED: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    action: Action,
    prior: f32,
    visits: u32,
    value_sum: f32,
    value_max: f32,
    first_child: u32,
    num_children: u16,
    dead: bool,
    /// Selected in the current batch and waiting for its evaluation.
    pending: bool,
    /// Transposition key and cost of the node's state.
    key: u64,
    cost: u32,
}

impl Node {
    fn new(action: Action, prior: f32, key: u64, cost: u32) -> Node {
        Node {
            action,
            prior,
            key,
            cost,
            visits: 0,
            value_sum: 0.0,
            value_max: 0.0,
            first_child: UNEXPANDED,
            num_children: 0,
            dead: false,
            pending: false,
        }
    }
}

/// A leaf selected for evaluation: its path from the root, its state and its children
/// (action, transposition key, cost) that survived pruning.
struct Leaf<S> {
    path: Vec<u32>,
    state: S,
    kept: Vec<(Action, u64, u32)>,
}

/// One episode's tree.
struct Tree<'a, E: Environment, V> {
    env: &'a E,
    eval: &'a V,
    cfg: &'a MctsConfig,
    nodes: Vec<Node>,
    tt: HashMap<u64, u32>,
    vmin: f32,
    vmax: f32,
    legal: Vec<Action>,
    /// Cheapest solution any simulation of this tree reached.
    best_found: Option<u32>,
    /// This episode's counters, added to the search's at its end.
    stats: SearchStats,
}

impl<'a, E: Environment, V: Evaluator<E>> Tree<'a, E, V> {
    fn q(&self, n: &Node) -> f32 {
        if self.cfg.max_backup {
            n.value_max
        } else {
            n.value_sum / n.visits as f32
        }
    }

    /// Walks down from `root` by PUCT to a leaf. A solution or a pruned node is handled here
    /// and gives `None`; so does a leaf already waiting in the current batch (`pending`), which
    /// ends the batch. Otherwise the leaf's children are generated (transposition and
    /// bound pruning) and it is returned for evaluation, with one visit already counted on
    /// its path (a virtual visit, which steers the batch's next selections elsewhere).
    fn select(
        &mut self,
        root: u32,
        root_state: &E::State,
        prefix: &[Action],
        shared: &Shared,
        batch_full: &mut bool,
    ) -> Option<Leaf<E::State>> {
        let env = self.env;
        let mut path = vec![root];
        let mut actions = prefix.to_vec();
        let mut state = root_state.clone();
        let mut node = root;
        let best = shared.best().min(env.max_cost());
        while self.nodes[node as usize].first_child != UNEXPANDED {
            let n = &self.nodes[node as usize];
            let (fc, nc) = (n.first_child as usize, n.num_children as usize);
            let sqrt_n = (n.visits.max(1) as f32).sqrt();
            let parent_q = if n.visits > 0 { self.q(n) } else { 0.0 };
            let mut pick = None;
            let mut pick_score = f32::NEG_INFINITY;
            for c in fc..fc + nc {
                let ch = &self.nodes[c];
                if ch.dead {
                    continue;
                }
                let q = if ch.visits > 0 && !ch.pending {
                    self.q(ch)
                } else {
                    parent_q
                };
                let qn = if self.vmax > self.vmin {
                    (q - self.vmin) / (self.vmax - self.vmin)
                } else {
                    0.5
                };
                let score = qn + self.cfg.c_puct * ch.prior * sqrt_n / (1.0 + ch.visits as f32);
                if score > pick_score {
                    pick_score = score;
                    pick = Some(c);
                }
            }
            let Some(c) = pick else {
                self.nodes[node as usize].dead = true;
                self.propagate_dead(&path);
                return None;
            };
            let a = self.nodes[c].action;
            state = env.step(&state, a).expect("an expanded action stays legal");
            actions.push(a);
            node = c as u32;
            path.push(node);
            if env.cost(&state).saturating_add(env.lower_bound(&state)) >= best {
                self.nodes[node as usize].dead = true;
                self.propagate_dead(&path);
                return None;
            }
        }
        if self.nodes[node as usize].pending {
            *batch_full = true;
            return None;
        }
        if let Some(total) = env.solution_cost(&state) {
            shared.offer(total, &actions);
            self.best_found = Some(self.best_found.map_or(total, |b| b.min(total)));
            self.nodes[node as usize].dead = true;
            self.backup(&path, super::value_of(env, total as f32), true);
            self.propagate_dead(&path);
            return None;
        }
        self.legal.clear();
        env.legal_actions(&state, &mut self.legal);
        let mut kept: Vec<(Action, u64, u32)> = Vec::with_capacity(self.legal.len());
        for &a in &self.legal {
            let Some(child) = env.step(&state, a) else {
                continue;
            };
            let cost = env.cost(&child);
            if cost.saturating_add(env.lower_bound(&child)) >= best {
                self.stats.bound_prunes += 1;
                continue;
            }
            let key = env.key(&child);
            match self.tt.get_mut(&key) {
                Some(c) if *c <= cost => {
                    self.stats.transposition_hits += 1;
                    continue;
                }
                Some(c) => *c = cost,
                None => {
                    self.tt.insert(key, cost);
                }
            }
            kept.push((a, key, cost));
        }
        shared.count(1);
        self.stats.expansion(actions.len(), kept.len());
        if kept.is_empty() {
            self.nodes[node as usize].dead = true;
            self.nodes[node as usize].first_child = self.nodes.len() as u32;
            self.propagate_dead(&path);
            return None;
        }
        for &p in &path {
            self.nodes[p as usize].visits += 1;
        }
        self.nodes[node as usize].pending = true;
        Some(Leaf { path, state, kept })
    }

    /// Expands an evaluated leaf: its children get their priors (with the relative noise),
    /// and the value is backed up its path (whose visits were counted at selection).
    fn finish(&mut self, leaf: Leaf<E::State>, ev: super::Evaluation, rng: &mut ChaCha8Rng) {
        let node = *leaf.path.last().expect("a path holds its root") as usize;
        let first = self.nodes.len() as u32;
        for (i, &(a, key, cost)) in leaf.kept.iter().enumerate() {
            let noise = if self.cfg.prior_noise > 0.0 {
                1.0 + self.cfg.prior_noise * rng.gen::<f32>()
            } else {
                1.0
            };
            self.nodes
                .push(Node::new(a, ev.priors[i] * noise, key, cost));
        }
        let n = &mut self.nodes[node];
        n.first_child = first;
        n.num_children = leaf.kept.len() as u16;
        n.pending = false;
        self.backup(&leaf.path, ev.value, false);
    }

    /// Adds `value` to the nodes of `path` (and a visit each when `count_visit`).
    fn backup(&mut self, path: &[u32], value: f32, count_visit: bool) {
        self.vmin = self.vmin.min(value);
        self.vmax = self.vmax.max(value);
        for &p in path {
            let n = &mut self.nodes[p as usize];
            if count_visit {
                n.visits += 1;
            }
            n.value_sum += value;
            n.value_max = n.value_max.max(value);
        }
    }

    /// Up to `cfg.leaf_batch` simulations from `root` (whose state is `root_state`, reached
    /// by `prefix`) whose leaves are evaluated in one call; returns how many ran.
    fn simulate_batch(
        &mut self,
        root: u32,
        root_state: &E::State,
        prefix: &[Action],
        shared: &Shared,
        rng: &mut ChaCha8Rng,
        limit: u32,
    ) -> u32 {
        let mut leaves = Vec::new();
        let mut ran = 0;
        let mut full = false;
        while ran < limit && !full && !self.nodes[root as usize].dead {
            ran += 1;
            if let Some(leaf) = self.select(root, root_state, prefix, shared, &mut full) {
                leaves.push(leaf);
            }
        }
        if leaves.is_empty() {
            return ran;
        }
        let states: Vec<&E::State> = leaves.iter().map(|l| &l.state).collect();
        let acts: Vec<Vec<Action>> = leaves
            .iter()
            .map(|l| l.kept.iter().map(|k| k.0).collect())
            .collect();
        let act_refs: Vec<&[Action]> = acts.iter().map(|a| a.as_slice()).collect();
        let evs = self.eval.evaluate(self.env, &states, &act_refs);
        for (leaf, ev) in leaves.into_iter().zip(evs) {
            self.finish(leaf, ev, rng);
        }
        ran
    }

    /// Mixes Dirichlet noise into the priors of `root`'s children (once per root, when
    /// `cfg.root_dirichlet` is set).
    fn root_noise(&mut self, root: u32, rng: &mut ChaCha8Rng) {
        let Some((alpha, weight)) = self.cfg.root_dirichlet else {
            return;
        };
        let n = &self.nodes[root as usize];
        if n.first_child == UNEXPANDED || n.num_children < 2 {
            return;
        }
        let (fc, nc) = (n.first_child as usize, n.num_children as usize);
        let Ok(dir) = rand_distr::Dirichlet::new(&vec![alpha; nc]) else {
            return;
        };
        let d: Vec<f32> = rng.sample(dir);
        for (c, x) in (fc..fc + nc).zip(d) {
            let p = &mut self.nodes[c].prior;
            *p = (1.0 - weight) * *p + weight * x;
        }
    }

    /// After committing to `root`, keeps in the transposition table only the states of its
    /// subtree: states seen under abandoned siblings can no longer be reached, so they must not
    /// block their transpositions below the new root.
    fn retain_subtree(&mut self, root: u32) {
        self.tt.clear();
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            let n = &self.nodes[i as usize];
            let c = self.tt.entry(n.key).or_insert(n.cost);
            *c = (*c).min(n.cost);
            if n.first_child != UNEXPANDED {
                stack.extend(n.first_child..n.first_child + n.num_children as u32);
            }
        }
    }

    /// Merges the visited nodes of this episode's tree into the search's tree, by action path
    /// from the initial state.
    fn merge_into(&self, rec: &mut SearchTree) {
        let mut stack = vec![(0u32, rec.root())];
        while let Some((i, parent)) = stack.pop() {
            let n = &self.nodes[i as usize];
            let me = rec.merge_node(
                parent,
                (i != 0).then_some(n.action),
                n.visits as u64,
                n.value_sum as f64,
                n.value_max,
                n.prior,
            );
            if n.first_child != UNEXPANDED {
                let (fc, nc) = (n.first_child, n.num_children as u32);
                for c in fc..fc + nc {
                    if self.nodes[c as usize].visits > 0 {
                        stack.push((c, me));
                    }
                }
            }
        }
    }

    /// Ends the episode: its tree, counters and the random stream after it go to `shared`.
    fn report(&mut self, shared: &Shared, rng: &ChaCha8Rng, complete: bool) {
        if complete {
            self.stats.episodes += 1;
        }
        shared.end_episode(self.cfg.worker, rng, &self.stats, |t| self.merge_into(t));
    }

    /// Marks ancestors dead whose children are all dead.
    fn propagate_dead(&mut self, path: &[u32]) {
        for w in (0..path.len()).rev() {
            let p = path[w] as usize;
            if !self.nodes[p].dead {
                let (fc, nc) = (
                    self.nodes[p].first_child,
                    self.nodes[p].num_children as usize,
                );
                if fc == UNEXPANDED || !(fc as usize..fc as usize + nc).all(|c| self.nodes[c].dead)
                {
                    return;
                }
                self.nodes[p].dead = true;
            }
        }
    }
}

/// Runs MCTS episodes until `shared` says stop; returns why it stopped. Solutions go to
/// `shared`. Call it from several threads with different seeds for root parallelism: they
/// share the best cost, so each prunes with the others' solutions.
pub fn mcts<E: Environment, V: Evaluator<E>>(
    env: &E,
    eval: &V,
    cfg: &MctsConfig,
    shared: &Shared,
) -> StopReason {
    let mut rng = shared
        .take_rng(cfg.worker)
        .unwrap_or_else(|| ChaCha8Rng::seed_from_u64(cfg.seed));
    loop {
        if let Err(reason) = play_episode(env, eval, cfg, shared, &mut rng, false) {
            return reason;
        }
    }
}

/// One committed move of an episode, for self-play training: the state, the actions of its
/// root's children and their visit counts (the policy target, as in AlphaZero and AlphaDev).
#[derive(Clone, Debug)]
pub struct EpisodeStep<S> {
    /// The state the move was chosen in.
    pub state: S,
    /// Actions of the root's children.
    pub actions: Vec<Action>,
    /// Visit count of each child, in the order of `actions`.
    pub visits: Vec<u32>,
    /// Value (`Q`, the best value backed up with max backup) of each child, in the order of
    /// `actions`; NaN for an unvisited child.
    pub values: Vec<f32>,
    /// The action committed to: the most visited live child.
    pub chosen: Action,
}

/// A played episode.
#[derive(Clone, Debug)]
pub struct Episode<S> {
    /// The committed moves (recorded only when asked for).
    pub steps: Vec<EpisodeStep<S>>,
    /// Total cost of the cheapest solution reached while playing the episode (by the
    /// committed path or any simulation), `None` if none was. A solution is closed to further
    /// search once found, so the committed path itself often ends in a dead end after it.
    pub solution_cost: Option<u32>,
}

/// Plays one episode: from the initial state, `cfg.simulations` simulations, then commit to the
/// most visited child, until a solution or a dead end. With `record`, each committed move's
/// state and root visit counts are returned. Solutions found on the way go to `shared`.
///
/// Errors: why the search must stop (`shared` says so, or the whole space under the best cost
/// is exhausted).
pub fn play_episode<E: Environment, V: Evaluator<E>>(
    env: &E,
    eval: &V,
    cfg: &MctsConfig,
    shared: &Shared,
    rng: &mut ChaCha8Rng,
    record: bool,
) -> Result<Episode<E::State>, StopReason> {
    let initial = env.initial();
    let mut tree = Tree {
        env,
        eval,
        cfg,
        nodes: vec![Node::new(0, 1.0, env.key(&initial), env.cost(&initial))],
        tt: HashMap::new(),
        vmin: f32::INFINITY,
        vmax: f32::NEG_INFINITY,
        legal: Vec::new(),
        best_found: None,
        stats: SearchStats::default(),
    };
    tree.tt.insert(env.key(&initial), env.cost(&initial));
    let mut root = 0u32;
    let mut state = initial;
    let mut prefix: Vec<Action> = Vec::new();
    let mut steps = Vec::new();
    loop {
        let mut done = 0;
        while done < cfg.simulations {
            if let Some(r) = shared.should_stop() {
                tree.report(shared, rng, false);
                return Err(r);
            }
            if tree.nodes[root as usize].dead {
                break;
            }
            // The first simulation alone, so that the root's priors exist for the noise.
            let limit = if done == 0 {
                1
            } else {
                cfg.leaf_batch.max(1).min(cfg.simulations - done)
            };
            done += tree.simulate_batch(root, &state, &prefix, shared, rng, limit);
            if done == 1 {
                tree.root_noise(root, rng);
            }
        }
        // Commit to the most visited live child.
        let n = &tree.nodes[root as usize];
        if n.dead || n.first_child == UNEXPANDED {
            if root == 0 && n.dead {
                // The whole space under the bound is exhausted.
                tree.report(shared, rng, true);
                return Err(StopReason::Exhausted);
            }
            tree.report(shared, rng, true);
            return Ok(Episode {
                steps,
                solution_cost: tree.best_found,
            });
        }
        let (fc, nc) = (n.first_child as usize, n.num_children as usize);
        let live = (fc..fc + nc).filter(|&c| !tree.nodes[c].dead && tree.nodes[c].visits > 0);
        let next = if (prefix.len() as u32) < cfg.temperature_moves {
            // Temperature 1: sample in proportion to the visit counts.
            let live: Vec<usize> = live.collect();
            let total: u32 = live.iter().map(|&c| tree.nodes[c].visits).sum();
            let mut pick = if total > 0 {
                rng.gen_range(0..total)
            } else {
                0
            };
            live.into_iter().find(|&c| {
                let v = tree.nodes[c].visits;
                if pick < v {
                    true
                } else {
                    pick -= v;
                    false
                }
            })
        } else {
            live.max_by(|&a, &b| {
                let (x, y) = (&tree.nodes[a], &tree.nodes[b]);
                x.visits
                    .cmp(&y.visits)
                    .then(x.value_max.total_cmp(&y.value_max))
            })
        };
        let Some(c) = next else {
            tree.report(shared, rng, true);
            return Ok(Episode {
                steps,
                solution_cost: tree.best_found,
            });
        };
        let a = tree.nodes[c].action;
        if record {
            steps.push(EpisodeStep {
                state: state.clone(),
                actions: (fc..fc + nc).map(|c| tree.nodes[c].action).collect(),
                visits: (fc..fc + nc).map(|c| tree.nodes[c].visits).collect(),
                values: (fc..fc + nc)
                    .map(|c| {
                        let n = &tree.nodes[c];
                        if n.visits > 0 {
                            tree.q(n)
                        } else {
                            f32::NAN
                        }
                    })
                    .collect(),
                chosen: a,
            });
        }
        state = env.step(&state, a).expect("an expanded action stays legal");
        prefix.push(a);
        root = c as u32;
        tree.retain_subtree(root);
        if let Some(total) = env.solution_cost(&state) {
            tree.report(shared, rng, true);
            return Ok(Episode {
                steps,
                solution_cost: Some(tree.best_found.map_or(total, |b| b.min(total))),
            });
        }
    }
}
