//! Large neighbourhood search around the incumbent (P. Shaw, "Using constraint programming and
//! local search methods to solve vehicle routing problems", CP 1998): keep the first `k` moves
//! of the best solution known, and search the completions of the state they reach with a
//! bounded A* ([`astar_from`]), for `k` from the end of the incumbent down to 0. An
//! improvement becomes the new incumbent and the sweep starts again from its end; a sweep that
//! finds nothing doubles the sub-searches' expansion limit. Suffixes of a good solution are
//! small games (near the end of a sorting kernel few orderings are left, and the game's
//! estimate is exact there), so this finds the improvements that lie in a kernel's last
//! moves first and widens from there. A sub-search at `k = 0` that runs to exhaustion is a
//! complete branch and bound search of the whole game, so given time nothing is lost.
//!
//! It needs an incumbent to start from (a seeded one, such as the classic sorting network);
//! without one it runs plain A* until one is found.

use super::{astar_from, Action, Environment, Shared, StopReason};

/// Expansions each sub-search may make in the first sweep.
pub const FIRST_LIMIT: u64 = 200;

/// Runs the large neighbourhood search with A* weight `w` until `shared` says stop, or until
/// the sub-search from the initial state exhausts its space (`Exhausted`: nothing cheaper than
/// the incumbent exists in the game).
pub fn lns<E: Environment>(env: &E, w: f32, shared: &Shared) -> StopReason {
    let mut limit = FIRST_LIMIT;
    loop {
        let Some(incumbent) = best_actions(shared) else {
            // No incumbent: A* from the start until it finds one.
            match astar_from(env, env.initial(), &[], w, shared, Some(limit)) {
                Some(r) if r != StopReason::Exhausted || best_actions(shared).is_none() => {
                    return r
                }
                _ => {
                    limit = limit.saturating_mul(2);
                    continue;
                }
            }
        };
        let best = shared.best();
        // States along the incumbent.
        let mut states = vec![env.initial()];
        for &a in &incumbent {
            let next = env
                .step(states.last().expect("non-empty"), a)
                .expect("the incumbent replays");
            states.push(next);
        }
        let mut improved = false;
        for k in (0..incumbent.len()).rev() {
            let r = astar_from(
                env,
                states[k].clone(),
                &incumbent[..k],
                w,
                shared,
                Some(limit),
            );
            match r {
                Some(StopReason::Exhausted) if k == 0 && shared.best() == best => {
                    return StopReason::Exhausted;
                }
                Some(StopReason::Exhausted) | None => {}
                Some(r) => return r,
            }
            if shared.best() < best {
                improved = true;
                break;
            }
        }
        if !improved {
            limit = limit.saturating_mul(2);
        }
    }
}

/// The actions of the best solution found so far, if any.
fn best_actions(shared: &Shared) -> Option<Vec<Action>> {
    shared
        .found()
        .into_iter()
        .min_by_key(|f| f.cost)
        .map(|f| f.actions)
}
