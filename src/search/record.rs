//! What a search leaves behind for its log and for `--resume`: the tree of all MCTS episodes
//! merged into one ([`SearchTree`]), counters over the whole search ([`SearchStats`]) and
//! each worker's random stream ([`RngState`]).
//!
//! MCTS plays episodes (AlphaDev's game, Methods): each builds a fresh tree from the initial
//! state. At the end of an episode its nodes are merged into the [`SearchTree`] by action
//! path (the same program prefix is the same node), adding visit counts and value sums and
//! keeping the best value. Every improvement of the best solution is also entered along its
//! path, marked with its cost and order, so the tree's principal variation
//! ([`SearchTree::principal_variation`]) leads to the kernel the search reported.
//!
//! The tree is bounded: past [`SearchTree::capacity`] nodes, the least visited leaves are
//! dropped (never a solution's path), and [`SearchTree::snapshot`] writes only nodes above a
//! visit threshold.

use super::Action;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Counters over a whole search (all threads, all episodes; MCTS and A*).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchStats {
    /// MCTS episodes played (0 for A*).
    pub episodes: u64,
    /// Expansions (programs explored) at each depth: `[d]` counts states `d` moves from the
    /// initial state whose children were generated.
    pub expansions_by_depth: Vec<u64>,
    /// Children kept by those expansions at each depth (after pruning); divided by
    /// `expansions_by_depth` it is the effective branching factor.
    pub children_by_depth: Vec<u64>,
    /// Children dropped because the transposition table had reached the same state (up to
    /// symmetry) at no greater cost.
    pub transposition_hits: u64,
    /// Children dropped because their cost plus the admissible lower bound reached the best
    /// solution's cost (branch and bound).
    pub bound_prunes: u64,
}

impl SearchStats {
    /// Records one expansion at `depth` that kept `children` children.
    pub fn expansion(&mut self, depth: usize, children: usize) {
        if self.expansions_by_depth.len() <= depth {
            self.expansions_by_depth.resize(depth + 1, 0);
            self.children_by_depth.resize(depth + 1, 0);
        }
        self.expansions_by_depth[depth] += 1;
        self.children_by_depth[depth] += children as u64;
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &SearchStats) {
        self.episodes += other.episodes;
        let d = other.expansions_by_depth.len();
        if self.expansions_by_depth.len() < d {
            self.expansions_by_depth.resize(d, 0);
            self.children_by_depth.resize(d, 0);
        }
        for i in 0..d {
            self.expansions_by_depth[i] += other.expansions_by_depth[i];
            self.children_by_depth[i] += other.children_by_depth[i];
        }
        self.transposition_hits += other.transposition_hits;
        self.bound_prunes += other.bound_prunes;
    }
}

/// A worker's ChaCha8 random stream, exactly (seed, stream and position), so that a resumed
/// search continues it rather than replaying it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed, hex.
    pub seed: String,
    /// The stream number.
    pub stream: u64,
    /// The position in the stream in 32-bit words (a u128, as a decimal string).
    pub word_pos: String,
}

impl RngState {
    /// The state of `rng`.
    pub fn of(rng: &ChaCha8Rng) -> RngState {
        RngState {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// The generator in this state; `None` if a field does not parse.
    pub fn restore(&self) -> Option<ChaCha8Rng> {
        use rand::SeedableRng;
        if self.seed.len() != 64 || !self.seed.is_ascii() {
            return None;
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).ok()?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().ok()?);
        Some(rng)
    }
}

/// One node of the merged tree: a program prefix reached by some episode.
#[derive(Clone, Debug)]
struct Node {
    action: Action,
    parent: u32,
    visits: u64,
    value_sum: f64,
    value_max: f32,
    prior_sum: f64,
    /// Episodes that created this node (the prior is averaged over them).
    appearances: u32,
    /// The cheapest improvement found through this node: `(cost, order of the improvement)`.
    solution: Option<(u32, u32)>,
    children: Vec<u32>,
}

const ROOT: u32 = 0;
const NO_PARENT: u32 = u32::MAX;

/// The MCTS episodes of a search merged by action path. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct SearchTree {
    nodes: Vec<Node>,
    index: HashMap<(u32, Action), u32>,
    capacity: usize,
    /// Nodes dropped so far to stay within `capacity`.
    dropped: u64,
}

/// The tree as written to a search log: nodes in breadth-first order, the root first, each
/// naming its children by index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    /// Nodes with fewer visits were left out (solution paths are always kept).
    pub visit_threshold: u64,
    /// Nodes the search's tree held when the snapshot was taken.
    pub nodes_in_search: u64,
    /// Nodes the search dropped earlier to stay within its memory bound.
    pub nodes_dropped: u64,
    /// The nodes; `nodes[0]` is the initial state.
    pub nodes: Vec<SnapshotNode>,
}

/// One node of a [`TreeSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotNode {
    /// The move that led here (`null` at the root), as its index in the move table.
    pub action: Option<Action>,
    /// The move's text (Intel syntax for x86 games).
    #[serde(rename = "move")]
    pub move_text: String,
    /// Visit count, summed over episodes.
    pub visits: u64,
    /// Mean value of the simulations through the node, in `[0, 1]`.
    pub value: f32,
    /// Best value backed up through the node (MCTS's `Q` with max backup).
    pub value_max: f32,
    /// Prior of the node as its parent's expansion gave it (with the search's prior noise),
    /// averaged over the episodes that expanded the parent.
    pub prior: f32,
    /// The cheapest improvement of the best solution found through this node: its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<u32>,
    /// With `solution`: which improvement it was (0 = the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_order: Option<u32>,
    /// Indices of the children kept in the snapshot.
    pub children: Vec<u32>,
}

impl SearchTree {
    /// An empty tree (just the initial state) holding at most `capacity` nodes.
    pub fn new(capacity: usize) -> SearchTree {
        SearchTree {
            nodes: vec![Node {
                action: 0,
                parent: NO_PARENT,
                visits: 0,
                value_sum: 0.0,
                value_max: 0.0,
                prior_sum: 1.0,
                appearances: 1,
                solution: None,
                children: Vec::new(),
            }],
            index: HashMap::new(),
            capacity: capacity.max(16),
            dropped: 0,
        }
    }

    /// Most nodes held; past it the least visited are dropped.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Nodes held now.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds only the initial state.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The child of `parent` by `action`, created if missing.
    fn child(&mut self, parent: u32, action: Action) -> u32 {
        if let Some(&c) = self.index.get(&(parent, action)) {
            return c;
        }
        let c = self.nodes.len() as u32;
        self.nodes.push(Node {
            action,
            parent,
            visits: 0,
            value_sum: 0.0,
            value_max: 0.0,
            prior_sum: 0.0,
            appearances: 0,
            solution: None,
            children: Vec::new(),
        });
        self.nodes[parent as usize].children.push(c);
        self.index.insert((parent, action), c);
        c
    }

    /// The root's index, for [`SearchTree::merge_node`].
    pub fn root(&self) -> u32 {
        ROOT
    }

    /// Adds one episode's statistics of the node reached from `parent` by `action` (or of the
    /// root itself when `action` is `None`); returns the node's index for merging its
    /// children.
    pub fn merge_node(
        &mut self,
        parent: u32,
        action: Option<Action>,
        visits: u64,
        value_sum: f64,
        value_max: f32,
        prior: f32,
    ) -> u32 {
        let i = match action {
            Some(a) => self.child(parent, a),
            None => ROOT,
        };
        let n = &mut self.nodes[i as usize];
        n.visits += visits;
        n.value_sum += value_sum;
        n.value_max = n.value_max.max(value_max);
        if action.is_some() {
            n.prior_sum += prior as f64;
            n.appearances += 1;
        }
        i
    }

    /// Enters an improvement of the best solution: the path `actions` from the initial state,
    /// with its total cost and order (0 for the first improvement).
    pub fn add_solution(&mut self, actions: &[Action], cost: u32, order: u32) {
        let mut i = ROOT;
        let better = |s: Option<(u32, u32)>| s.map_or(true, |old| (cost, order) < old);
        if better(self.nodes[0].solution) {
            self.nodes[0].solution = Some((cost, order));
        }
        for &a in actions {
            i = self.child(i, a);
            if better(self.nodes[i as usize].solution) {
                self.nodes[i as usize].solution = Some((cost, order));
            }
        }
    }

    /// Drops nodes to get back under `capacity` if the tree outgrew it: subtrees whose root
    /// has fewer visits than a threshold that doubles until at most half the capacity is
    /// left (solution paths are kept whatever their visits).
    pub fn enforce_capacity(&mut self) {
        if self.nodes.len() <= self.capacity {
            return;
        }
        let mut threshold = 2;
        loop {
            let kept = self.kept(threshold);
            if kept.len() <= self.capacity / 2 || threshold > 1 << 40 {
                self.dropped += (self.nodes.len() - kept.len()) as u64;
                self.rebuild(&kept);
                return;
            }
            threshold *= 2;
        }
    }

    /// Indices of the nodes that survive `threshold`, breadth first from the root: a node is
    /// kept when its parent is and it has at least `threshold` visits or lies on a solution
    /// path.
    fn kept(&self, threshold: u64) -> Vec<u32> {
        let mut out = vec![ROOT];
        let mut k = 0;
        while k < out.len() {
            let n = &self.nodes[out[k] as usize];
            for &c in &n.children {
                let ch = &self.nodes[c as usize];
                if ch.visits >= threshold || ch.solution.is_some() {
                    out.push(c);
                }
            }
            k += 1;
        }
        out
    }

    /// Keeps exactly `kept` (breadth-first, root first, each node's parent before it).
    fn rebuild(&mut self, kept: &[u32]) {
        let mut new_index = vec![u32::MAX; self.nodes.len()];
        for (j, &i) in kept.iter().enumerate() {
            new_index[i as usize] = j as u32;
        }
        let mut nodes = Vec::with_capacity(kept.len());
        let mut index = HashMap::with_capacity(kept.len());
        for &i in kept {
            let mut n = self.nodes[i as usize].clone();
            n.parent = if n.parent == NO_PARENT {
                NO_PARENT
            } else {
                new_index[n.parent as usize]
            };
            n.children = n
                .children
                .iter()
                .map(|&c| new_index[c as usize])
                .filter(|&c| c != u32::MAX)
                .collect();
            if n.parent != NO_PARENT {
                index.insert((n.parent, n.action), nodes.len() as u32);
            }
            nodes.push(n);
        }
        self.nodes = nodes;
        self.index = index;
    }

    /// The tree for a log: nodes with at least `min_visits` visits (and solution paths), the
    /// threshold raised (doubling) until at most `max_nodes` remain; `describe` gives each
    /// move's text.
    pub fn snapshot(
        &self,
        min_visits: u64,
        max_nodes: usize,
        describe: impl Fn(Action) -> String,
    ) -> TreeSnapshot {
        let mut threshold = min_visits.max(1);
        let kept = loop {
            let kept = self.kept(threshold);
            if kept.len() <= max_nodes.max(1) || threshold > 1 << 40 {
                break kept;
            }
            threshold *= 2;
        };
        let mut new_index = HashMap::with_capacity(kept.len());
        for (j, &i) in kept.iter().enumerate() {
            new_index.insert(i, j as u32);
        }
        let nodes = kept
            .iter()
            .map(|&i| {
                let n = &self.nodes[i as usize];
                let root = n.parent == NO_PARENT;
                SnapshotNode {
                    action: (!root).then_some(n.action),
                    move_text: if root {
                        String::new()
                    } else {
                        describe(n.action)
                    },
                    visits: n.visits,
                    value: if n.visits > 0 {
                        (n.value_sum / n.visits as f64) as f32
                    } else {
                        0.0
                    },
                    value_max: n.value_max,
                    prior: if n.appearances > 0 {
                        (n.prior_sum / n.appearances as f64) as f32
                    } else {
                        0.0
                    },
                    solution: n.solution.map(|s| s.0),
                    solution_order: n.solution.map(|s| s.1),
                    children: n
                        .children
                        .iter()
                        .filter_map(|c| new_index.get(c).copied())
                        .collect(),
                }
            })
            .collect();
        TreeSnapshot {
            visit_threshold: threshold,
            nodes_in_search: self.nodes.len() as u64,
            nodes_dropped: self.dropped,
            nodes,
        }
    }

    /// A tree continuing from a snapshot (for `--resume`): its nodes with their counts; the
    /// nodes the snapshot left out are gone. Errors: a child index out of range, a child
    /// listed twice or a node without a move, with the node's index.
    pub fn from_snapshot(s: &TreeSnapshot, capacity: usize) -> Result<SearchTree, String> {
        let mut t = SearchTree::new(capacity);
        if s.nodes.is_empty() {
            return Ok(t);
        }
        t.dropped = s.nodes_dropped + s.nodes_in_search.saturating_sub(s.nodes.len() as u64);
        // Snapshot index -> tree index, filled as parents are placed.
        let mut place = vec![u32::MAX; s.nodes.len()];
        place[0] = ROOT;
        let root = &s.nodes[0];
        t.nodes[0].visits = root.visits;
        t.nodes[0].value_sum = root.value as f64 * root.visits as f64;
        t.nodes[0].value_max = root.value_max;
        t.nodes[0].solution = root.solution.zip(root.solution_order);
        for (i, n) in s.nodes.iter().enumerate() {
            let me = place[i];
            if me == u32::MAX {
                return Err(format!("tree node {i} is nobody's child"));
            }
            for &c in &n.children {
                let ch = s.nodes.get(c as usize).ok_or_else(|| {
                    format!("tree node {i} names child {c}, which does not exist")
                })?;
                if c as usize <= i || place[c as usize] != u32::MAX {
                    return Err(format!("tree node {i} names child {c} out of order"));
                }
                let a = ch
                    .action
                    .ok_or_else(|| format!("tree node {c} has no move"))?;
                let j = t.child(me, a);
                let m = &mut t.nodes[j as usize];
                m.visits = ch.visits;
                m.value_sum = ch.value as f64 * ch.visits as f64;
                m.value_max = ch.value_max;
                m.prior_sum = ch.prior as f64;
                m.appearances = 1;
                m.solution = ch.solution.zip(ch.solution_order);
                place[c as usize] = j;
            }
        }
        Ok(t)
    }
}

impl TreeSnapshot {
    /// The principal variation: from the root, the child through which the cheapest (then
    /// earliest) improvement was found, else the most visited child (ties: the best value),
    /// until a leaf. Indices into `nodes`, the root excluded. In a deterministic game with
    /// exact solution costs this is the best line the search knows; it ends in the reported
    /// kernel's moves when the search found one.
    pub fn principal_variation(&self) -> Vec<u32> {
        let mut pv = Vec::new();
        let Some(mut n) = self.nodes.first() else {
            return pv;
        };
        loop {
            let best = n
                .children
                .iter()
                .copied()
                .filter(|&c| (c as usize) < self.nodes.len())
                .min_by(|&a, &b| {
                    let (x, y) = (&self.nodes[a as usize], &self.nodes[b as usize]);
                    let key = |m: &SnapshotNode| {
                        (
                            m.solution
                                .zip(m.solution_order)
                                .unwrap_or((u32::MAX, u32::MAX)),
                            std::cmp::Reverse(m.visits),
                        )
                    };
                    key(x)
                        .cmp(&key(y))
                        .then(y.value_max.total_cmp(&x.value_max))
                });
            match best {
                Some(c) if !pv.contains(&c) => {
                    pv.push(c);
                    n = &self.nodes[c as usize];
                }
                _ => return pv,
            }
        }
    }

    /// The depth of each node (0 for the root), or `None` where a node is unreachable.
    pub fn depths(&self) -> Vec<Option<usize>> {
        let mut d = vec![None; self.nodes.len()];
        if d.is_empty() {
            return d;
        }
        d[0] = Some(0);
        for i in 0..self.nodes.len() {
            if let Some(k) = d[i] {
                for &c in &self.nodes[i].children {
                    if let Some(x) = d.get_mut(c as usize) {
                        if x.is_none() {
                            *x = Some(k + 1);
                        }
                    }
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> SearchTree {
        let mut t = SearchTree::new(1000);
        let r = t.merge_node(0, None, 10, 5.0, 0.9, 1.0);
        let a = t.merge_node(r, Some(3), 6, 3.0, 0.9, 0.6);
        t.merge_node(a, Some(1), 4, 2.0, 0.8, 0.5);
        t.merge_node(r, Some(2), 4, 1.0, 0.4, 0.4);
        t
    }

    #[test]
    fn merge_adds_counts_and_snapshot_round_trips() {
        let mut t = tree();
        let r = t.root();
        t.merge_node(r, Some(3), 2, 0.5, 0.95, 0.2);
        let s = t.snapshot(1, 100, |a| format!("m{a}"));
        assert_eq!(s.nodes.len(), 4);
        let a = &s.nodes[s.nodes[0].children[0] as usize];
        assert_eq!(a.action, Some(3));
        assert_eq!(a.move_text, "m3");
        assert_eq!(a.visits, 8);
        assert!((a.value - 3.5 / 8.0).abs() < 1e-6);
        assert_eq!(a.value_max, 0.95);
        assert!((a.prior - 0.4).abs() < 1e-6, "mean prior over 2 episodes");
        let back = SearchTree::from_snapshot(&s, 1000).unwrap();
        let s2 = back.snapshot(1, 100, |a| format!("m{a}"));
        assert_eq!(s2.nodes.len(), s.nodes.len());
        for (x, y) in s.nodes.iter().zip(&s2.nodes) {
            assert_eq!(
                (x.action, x.visits, x.children.clone()),
                (y.action, y.visits, y.children.clone())
            );
            assert!((x.value - y.value).abs() < 1e-6);
        }
    }

    #[test]
    fn principal_variation_follows_the_best_solution_then_visits() {
        let mut t = tree();
        // Most visits go through action 3, but the best solution is through action 2.
        t.add_solution(&[3, 1, 7], 20, 0);
        t.add_solution(&[2, 5], 18, 1);
        t.add_solution(&[3, 4], 18, 2);
        let s = t.snapshot(1, 100, |a| a.to_string());
        let pv: Vec<Option<Action>> = s
            .principal_variation()
            .iter()
            .map(|&i| s.nodes[i as usize].action)
            .collect();
        assert_eq!(
            pv,
            vec![Some(2), Some(5)],
            "cheapest, then earliest improvement"
        );
        let plain = tree().snapshot(1, 100, |a| a.to_string());
        let pv: Vec<Option<Action>> = plain
            .principal_variation()
            .iter()
            .map(|&i| plain.nodes[i as usize].action)
            .collect();
        assert_eq!(
            pv,
            vec![Some(3), Some(1)],
            "without solutions: most visited"
        );
    }

    #[test]
    fn thresholds_keep_solution_paths() {
        let mut t = tree();
        t.add_solution(&[2, 9], 17, 0);
        let s = t.snapshot(5, 100, |a| a.to_string());
        let kept: Vec<Option<Action>> = s.nodes.iter().map(|n| n.action).collect();
        // Node 3 (6 visits) stays; 3-1 (4 visits) goes; 2 and 2-9 stay as a solution path.
        assert_eq!(kept, vec![None, Some(3), Some(2), Some(9)]);
        let small = t.snapshot(1, 3, |a| a.to_string());
        assert!(small.nodes.len() <= 4 && small.visit_threshold > 1);
    }

    #[test]
    fn capacity_drops_rare_nodes() {
        let mut t = SearchTree::new(16);
        let r = t.root();
        for a in 0..40u16 {
            t.merge_node(r, Some(a), if a < 3 { 100 } else { 1 }, 0.0, 0.0, 0.0);
        }
        t.enforce_capacity();
        assert_eq!(t.len(), 4, "the root and the three visited children");
        let s = t.snapshot(1, 100, |a| a.to_string());
        assert_eq!(s.nodes_dropped, 37);
    }

    #[test]
    fn rng_state_round_trips() {
        use rand::{Rng, SeedableRng};
        let mut a = ChaCha8Rng::seed_from_u64(42);
        for _ in 0..17 {
            a.gen::<u32>();
        }
        let mut b = RngState::of(&a).restore().unwrap();
        assert_eq!(a.gen::<u64>(), b.gen::<u64>());
        let bad = RngState {
            seed: "zz".into(),
            stream: 0,
            word_pos: "0".into(),
        };
        assert!(bad.restore().is_none());
    }
}
