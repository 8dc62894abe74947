//! Exact sorting-network distances for small `n`: the fewest compare-exchanges that sort every
//! ordering in a set. Used by the sort game's estimate: a state whose `n` value registers can
//! be in any of the orderings `S` needs `C(S)` more comparators if finished as a network, at 4
//! instructions each (`mov`, `cmp`, two `cmovcc`).
//!
//! A set of orderings of `n <= 5` values is a bit set over the `n!` permutations (`u128`).
//! A comparator on registers `(i, j)` maps each permutation to itself with positions `i` and
//! `j` ordered. Since the stores may read the sorted values from any registers, a set is
//! sorted when it has one element, and the comparator's direction does not matter. `C(S)` is
//! computed by depth-first search with memoisation, per thread.

use crate::isa::{Cond, Insn, Reg};
use std::cell::RefCell;
use std::collections::HashMap;

/// Largest `n` the tables support (`5! = 120` permutations fit a `u128`).
pub const MAX_NET_N: usize = 5;

/// Permutation tables for one `n`.
pub struct Networks {
    n: usize,
    /// Packed tuple (3 bits per position) -> permutation index, or `u8::MAX`.
    index_of: Vec<u8>,
    /// `apply[c][p]`: permutation index after comparator `c` on permutation `p`.
    apply: Vec<Vec<u8>>,
}

thread_local! {
    static MEMO: RefCell<HashMap<(u8, u128), u8>> = RefCell::new(HashMap::new());
}

impl Networks {
    /// Tables for `n` values (`2 <= n <= MAX_NET_N`).
    pub fn new(n: usize) -> Networks {
        assert!((1..=MAX_NET_N).contains(&n));
        let mut perms: Vec<Vec<u8>> = Vec::new();
        permutations(&mut (0..n as u8).collect(), 0, &mut perms);
        perms.sort();
        let mut index_of = vec![u8::MAX; 1 << (3 * n)];
        for (i, p) in perms.iter().enumerate() {
            index_of[pack(p)] = i as u8;
        }
        let mut apply = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                apply.push(
                    perms
                        .iter()
                        .map(|p| {
                            let mut q = p.clone();
                            if q[i] > q[j] {
                                q.swap(i, j);
                            }
                            index_of[pack(&q)]
                        })
                        .collect(),
                );
            }
        }
        Networks { n, index_of, apply }
    }

    /// The permutation index of a tuple of `n` distinct values in `0..n` packed 3 bits per
    /// position (first position in the highest bits), or `None` if it is not a permutation.
    pub fn index(&self, packed: u32) -> Option<u8> {
        self.index_of
            .get(packed as usize)
            .copied()
            .filter(|&i| i != u8::MAX)
    }

    /// The fewest comparators that sort every ordering in `set` (bit `p` = permutation `p`).
    pub fn min_comparators(&self, set: u128) -> u8 {
        MEMO.with(|m| self.solve(set, &mut m.borrow_mut()))
    }

    fn solve(&self, set: u128, memo: &mut HashMap<(u8, u128), u8>) -> u8 {
        if set.count_ones() <= 1 {
            return 0;
        }
        if let Some(&v) = memo.get(&(self.n as u8, set)) {
            return v;
        }
        let mut best = u8::MAX;
        // Each comparator at most halves the set: a lower bound for pruning.
        let lb = |s: u128| 128 - (s.count_ones() - 1).leading_zeros() as u8;
        let mut next: Vec<u128> = self
            .apply
            .iter()
            .map(|t| {
                let mut out = 0u128;
                let mut s = set;
                while s != 0 {
                    let p = s.trailing_zeros() as usize;
                    s &= s - 1;
                    out |= 1u128 << t[p];
                }
                out
            })
            .filter(|&s| s != set)
            .collect();
        next.sort_by_key(|s| s.count_ones());
        next.dedup();
        for s in next {
            if 1 + lb(s) >= best {
                continue;
            }
            best = best.min(1 + self.solve(s, memo));
        }
        memo.insert((self.n as u8, set), best);
        best
    }
}

fn pack(p: &[u8]) -> usize {
    p.iter().fold(0usize, |k, &v| k << 3 | v as usize)
}

fn permutations(v: &mut Vec<u8>, k: usize, out: &mut Vec<Vec<u8>>) {
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out);
        v.swap(k, i);
    }
}

/// Comparators of optimal-size sorting networks for `n = 2..=5` (1, 3, 5, 9 comparators;
/// Knuth, TAOCP vol. 3, 5.3.4), or `None` for other `n`.
pub fn classic_comparators(n: usize) -> Option<&'static [(usize, usize)]> {
    const NETS: [&[(usize, usize)]; 4] = [
        &[(0, 1)],
        &[(0, 1), (1, 2), (0, 1)],
        &[(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)],
        &[
            (0, 1),
            (3, 4),
            (2, 4),
            (2, 3),
            (0, 3),
            (0, 2),
            (1, 4),
            (1, 3),
            (1, 2),
        ],
    ];
    n.checked_sub(2).and_then(|i| NETS.get(i).copied())
}

/// The classic network of [`classic_comparators`] for `task` as a kernel
/// ([`network_kernel`] over the task's scratch registers), or `None` when there is none for
/// its `n` or the task has no spare register for the compare-exchange's copy.
pub fn classic_kernel(task: &crate::task::Task) -> Option<Vec<Insn>> {
    let c = classic_comparators(task.n)?;
    (task.scratch.len() > task.n).then(|| network_kernel(&task.scratch, task.n, c))
}

/// A sorting network as a kernel in the game's form: `n` loads into `scratch[0..n]`, for each
/// comparator `(i, j)` the compare-exchange `mov t, ri; cmp ri, rj; cmovg ri, rj; cmovg rj, t`
/// with `t = scratch[n]`, then `n` stores. Length: 4 per comparator + 2n instructions.
///
/// Panics if `scratch` has fewer than `n + 1` registers.
pub fn network_kernel(scratch: &[Reg], n: usize, comparators: &[(usize, usize)]) -> Vec<Insn> {
    let (r, t) = (scratch, scratch[n]);
    let mut prog: Vec<Insn> = (0..n)
        .map(|k| Insn::Load {
            dst: r[k],
            slot: k as u8,
        })
        .collect();
    for &(i, j) in comparators {
        prog.extend([
            Insn::Mov { dst: t, src: r[i] },
            Insn::Cmp { a: r[i], b: r[j] },
            Insn::Cmov {
                cc: Cond::G,
                dst: r[i],
                src: r[j],
            },
            Insn::Cmov {
                cc: Cond::G,
                dst: r[j],
                src: t,
            },
        ]);
    }
    prog.extend((0..n).map(|k| Insn::Store {
        slot: k as u8,
        src: r[k],
    }));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Optimal sorting networks have 1, 3, 5, 9 comparators for n = 2, 3, 4, 5 (Knuth, TAOCP
    /// vol. 3, 5.3.4).
    #[test]
    fn classic_networks_have_the_known_sizes_and_lengths() {
        for (n, comparators, len) in [(3, 3, 18), (4, 5, 28), (5, 9, 46)] {
            let c = classic_comparators(n).unwrap();
            assert_eq!(c.len(), comparators);
            assert_eq!(network_kernel(&Reg::ALL, n, c).len(), len);
        }
        assert_eq!(classic_comparators(6), None);
    }

    #[test]
    fn full_sets_need_the_optimal_network_sizes() {
        for (n, want) in [(2, 1), (3, 3), (4, 5), (5, 9)] {
            let net = Networks::new(n);
            let all: u128 = if n == 5 {
                (1u128 << 120) - 1
            } else {
                (1u128 << (1..=n).product::<usize>()) - 1
            };
            assert_eq!(net.min_comparators(all), want, "n = {n}");
        }
    }
}
