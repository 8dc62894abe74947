//! Weighted A* (Pohl, "Heuristic search viewed as path finding in a graph", Artificial
//! Intelligence 1:193, 1970) over the same [`Environment`], as an anytime search: it keeps
//! popping states with `f = g + w * estimate` after the first solution and prunes with the
//! admissible lower bound against the best cost found, so with enough time it proves the best
//! solution optimal for the searched space (an exhausted open list).
//!
//! Nodes store only a parent link and an action; a state is rebuilt by replaying its path
//! from the initial state when it is expanded, which keeps memory at a few bytes per node.

use super::{Action, Environment, SearchStats, Shared, StopReason};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

struct Node {
    parent: u32,
    action: Action,
}

/// Runs weighted A* with weight `w` (1 = plain A*, larger = greedier) until `shared` says stop.
pub fn astar<E: Environment>(env: &E, w: f32, shared: &Shared) -> StopReason {
    astar_from(env, env.initial(), &[], w, shared, None).unwrap_or(StopReason::Expansions)
}

/// Weighted A* over the completions of `root`, the state that `prefix` (actions from the
/// initial state) reaches: every solution is offered to `shared` as `prefix` followed by the
/// moves from `root`. Stops when `shared` says so (`Some(reason)`), when every completion
/// under the best cost has been searched (`Some(Exhausted)`: none is cheaper than the best),
/// or after `max_expansions` expansions (`None`).
pub fn astar_from<E: Environment>(
    env: &E,
    root: E::State,
    prefix: &[Action],
    w: f32,
    shared: &Shared,
    max_expansions: Option<u64>,
) -> Option<StopReason> {
    let mut nodes = vec![Node {
        parent: u32::MAX,
        action: 0,
    }];
    let offer = |total: u32, path: &[Action]| {
        if prefix.is_empty() {
            shared.offer(total, path);
        } else {
            let whole: Vec<Action> = prefix.iter().chain(path).copied().collect();
            shared.offer(total, &whole);
        }
    };
    let mut expanded = 0u64;
    let mut open: BinaryHeap<(Reverse<u32>, Reverse<u32>, u32)> = BinaryHeap::new();
    let f = |g: u32, h: f32| ((g as f32 + w * h) * 16.0) as u32;
    open.push((
        Reverse(f(env.cost(&root), env.estimate(&root))),
        Reverse(env.cost(&root)),
        0,
    ));
    let mut closed: HashMap<u64, u32> = HashMap::new();
    closed.insert(env.key(&root), env.cost(&root));
    let mut legal = Vec::new();
    let mut path = Vec::new();
    let mut iter = 0u64;
    // Counters, added to the search's every 1024 states and at the end.
    let mut stats = SearchStats::default();
    while let Some((_, Reverse(g), id)) = open.pop() {
        iter += 1;
        if iter % 16 == 0 {
            if let Some(r) = shared.should_stop() {
                shared.add_stats(&stats);
                return Some(r);
            }
        }
        if max_expansions.is_some_and(|m| expanded >= m) {
            shared.add_stats(&stats);
            return None;
        }
        if iter % 1024 == 0 {
            shared.add_stats(&stats);
            stats = SearchStats::default();
        }
        // Rebuild the state.
        path.clear();
        let mut cur = id;
        while cur != 0 {
            path.push(nodes[cur as usize].action);
            cur = nodes[cur as usize].parent;
        }
        path.reverse();
        let mut state = root.clone();
        for &a in &path {
            state = env.step(&state, a).expect("a stored path stays legal");
        }
        debug_assert_eq!(env.cost(&state), g);
        let best = shared.best().min(env.max_cost());
        if g.saturating_add(env.lower_bound(&state)) >= best {
            continue;
        }
        if let Some(total) = env.solution_cost(&state) {
            offer(total, &path);
            continue;
        }
        legal.clear();
        env.legal_actions(&state, &mut legal);
        shared.count(1);
        expanded += 1;
        let mut kept = 0;
        for &a in &legal {
            let Some(child) = env.step(&state, a) else {
                continue;
            };
            let cg = env.cost(&child);
            let lb = env.lower_bound(&child);
            if cg.saturating_add(lb) >= best {
                stats.bound_prunes += 1;
                continue;
            }
            let key = env.key(&child);
            match closed.get_mut(&key) {
                Some(c) if *c <= cg => {
                    stats.transposition_hits += 1;
                    continue;
                }
                Some(c) => *c = cg,
                None => {
                    closed.insert(key, cg);
                }
            }
            if let Some(total) = env.solution_cost(&child) {
                let mut p = path.clone();
                p.push(a);
                offer(total, &p);
                continue;
            }
            kept += 1;
            nodes.push(Node {
                parent: id,
                action: a,
            });
            open.push((
                Reverse(f(cg, env.estimate(&child))),
                Reverse(cg),
                nodes.len() as u32 - 1,
            ));
        }
        stats.expansion(path.len(), kept);
    }
    shared.add_stats(&stats);
    Some(StopReason::Exhausted)
}
