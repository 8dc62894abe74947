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

/// A set of 0-1 vectors of `n <= 8` elements: bit `x` set when the vector with code `x` (bit
/// `k` = element `k`) is in the set.
pub type ZeroOneSet = [u64; 4];

thread_local! {
    static ZO_MEMO: RefCell<HashMap<(u8, ZeroOneSet), u8>> = RefCell::new(HashMap::new());
}

/// Network distances over sets of 0-1 vectors, for the sort game past `n = 5` (where sets of
/// permutations no longer fit a `u128`). By the 0-1 principle applied to subsets (Knuth, TAOCP
/// vol. 3, 5.3.4: a comparator network sorts a set of inputs iff it sorts their threshold 0-1
/// images), the fewest comparators that sort a set of orderings equals the fewest that sort
/// its 0-1 images, so the estimate keeps its meaning. Since the stores may read the sorted
/// values from any register, a set counts as sorted when its vectors form a chain under
/// bitwise inclusion (then one fixed assignment of registers to ranks sorts them all), and the
/// direction of a comparator does not matter.
///
/// Exact distances cost an exponential search, so [`ZeroOne::comparators`] is exact only for
/// small sets (a depth-first search with the bound of [`ZeroOne::lower_bound`], given a node
/// budget) and otherwise returns the size of a greedy network: an estimate that may be too
/// high, never a bound.
pub struct ZeroOne {
    n: usize,
    pairs: Vec<(u32, u32)>,
    /// Per pair `(i, j)`: the codes with a 1 at `i` and a 0 at `j` (those the comparator
    /// changes), as a set.
    movers: Vec<ZeroOneSet>,
    /// Per weight `w`: the codes with `w` ones.
    weights: Vec<ZeroOneSet>,
}

fn set_and(a: &ZeroOneSet, b: &ZeroOneSet) -> ZeroOneSet {
    [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
}

fn set_count(a: &ZeroOneSet) -> u32 {
    a.iter().map(|w| w.count_ones()).sum()
}

/// `a` shifted towards higher codes by `s` (`s < 256`).
fn set_shl(a: &ZeroOneSet, s: u32) -> ZeroOneSet {
    let (q, r) = ((s / 64) as usize, s % 64);
    let mut out = [0u64; 4];
    for k in (q..4).rev() {
        let lo = a[k - q] << r;
        let carry = if r > 0 && k > q {
            a[k - q - 1] >> (64 - r)
        } else {
            0
        };
        out[k] = lo | carry;
    }
    out
}

/// Nodes the exact search of [`ZeroOne::comparators`] may visit before it falls back to the
/// greedy network.
const ZO_NODE_BUDGET: u32 = 2_000;

/// The exact search of [`ZeroOne::comparators`] runs only when the greedy network has at most
/// this many comparators (larger sets would spend the node budget in vain).
const ZO_EXACT_MAX: u8 = 6;

impl ZeroOne {
    /// Distances for vectors of `n` elements (`2 <= n <= 8`).
    pub fn new(n: usize) -> ZeroOne {
        assert!((2..=8).contains(&n));
        let pairs: Vec<(u32, u32)> = (0..n as u32)
            .flat_map(|i| (i + 1..n as u32).map(move |j| (i, j)))
            .collect();
        let set_of = |keep: &dyn Fn(u32) -> bool| {
            let mut set = [0u64; 4];
            for x in (0..1u32 << n).filter(|&x| keep(x)) {
                set[(x / 64) as usize] |= 1 << (x % 64);
            }
            set
        };
        let movers = pairs
            .iter()
            .map(|&(i, j)| set_of(&|x| (x >> i) & 1 == 1 && (x >> j) & 1 == 0))
            .collect();
        let weights = (0..=n as u32)
            .map(|w| set_of(&|x| x.count_ones() == w))
            .collect();
        ZeroOne {
            n,
            pairs,
            movers,
            weights,
        }
    }

    fn members(set: &ZeroOneSet) -> impl Iterator<Item = u32> + '_ {
        set.iter().enumerate().flat_map(|(w, &bits)| {
            let mut b = bits;
            std::iter::from_fn(move || {
                (b != 0).then(|| {
                    let t = b.trailing_zeros();
                    b &= b - 1;
                    w as u32 * 64 + t
                })
            })
        })
    }

    /// The set after comparator number `p` (of `pairs`): element `i` takes the smaller
    /// value, so the codes with a 1 at `i` over a 0 at `j` move up by `2^j - 2^i`.
    fn apply(&self, set: &ZeroOneSet, p: usize) -> ZeroOneSet {
        let (i, j) = self.pairs[p];
        let m = &self.movers[p];
        let moved = set_and(set, m);
        let up = set_shl(&moved, (1 << j) - (1 << i));
        [
            (set[0] & !m[0]) | up[0],
            (set[1] & !m[1]) | up[1],
            (set[2] & !m[2]) | up[2],
            (set[3] & !m[3]) | up[3],
        ]
    }

    /// Vectors per weight class.
    fn class_sizes(&self, set: &ZeroOneSet) -> impl Iterator<Item = u32> + '_ {
        let set = *set;
        self.weights
            .iter()
            .map(move |w| set_count(&set_and(&set, w)))
    }

    /// Whether `set` is sorted up to a fixed renaming of elements: a chain under inclusion
    /// (at most one vector per weight, each inside the next heavier one).
    pub fn is_sorted(&self, set: &ZeroOneSet) -> bool {
        self.class_sizes(set).all(|c| c <= 1) && self.out_of_order(set) == 0
    }

    /// With at most one vector per weight: how many vectors are not inside the next heavier
    /// one present.
    fn out_of_order(&self, set: &ZeroOneSet) -> usize {
        let mut v: Vec<u32> = Self::members(set).collect();
        v.sort_by_key(|x| x.count_ones());
        v.windows(2).filter(|w| w[0] & !w[1] != 0).count()
    }

    /// An admissible bound on the comparators still needed: a comparator maps at most two
    /// vectors of one weight onto one, so a weight class of `m` vectors needs `ceil(log2 m)`;
    /// an unsorted set needs at least one.
    pub fn lower_bound(&self, set: &ZeroOneSet) -> u8 {
        let m = self.class_sizes(set).max().unwrap_or(0);
        let lb = if m <= 1 {
            0
        } else {
            32 - (m - 1).leading_zeros()
        } as u8;
        if lb == 0 && !self.is_sorted(set) {
            1
        } else {
            lb
        }
    }

    /// Comparators of a greedy network for `set`: each step takes the comparator that leaves
    /// the fewest vectors (then the fewest pairs of adjacent weights out of order).
    pub fn greedy(&self, set: &ZeroOneSet) -> u8 {
        let mut cur = *set;
        let mut steps = 0u8;
        while !self.is_sorted(&cur) && (steps as usize) < 4 * self.n * self.n {
            let mut best: Option<((u32, usize), ZeroOneSet)> = None;
            for p in 0..self.pairs.len() {
                let next = self.apply(&cur, p);
                if next == cur {
                    continue;
                }
                let size = set_count(&next);
                if best.as_ref().is_some_and(|(k, _)| k.0 < size) {
                    continue;
                }
                // Ties go to the fewest vectors out of order.
                let key = (size, self.out_of_order(&next));
                if best.as_ref().map_or(true, |(k, _)| key < *k) {
                    best = Some((key, next));
                }
            }
            match best {
                Some((_, s)) => cur = s,
                None => break,
            }
            steps += 1;
        }
        steps
    }

    /// The fewest comparators that sort `set` when a small search finds them (see the type's
    /// docs), else [`ZeroOne::greedy`]'s count.
    pub fn comparators(&self, set: &ZeroOneSet) -> u8 {
        if let Some(v) = ZO_MEMO.with(|m| m.borrow().get(&(self.n as u8, *set)).copied()) {
            return v;
        }
        let greedy = self.greedy(set);
        let mut nodes = 0u32;
        let mut best = greedy;
        // Iterative deepening below the greedy count; the budget caps the work.
        let depths = if greedy <= ZO_EXACT_MAX {
            self.lower_bound(set)..greedy
        } else {
            0..0
        };
        for depth in depths {
            match self.fits(set, depth, &mut nodes) {
                Some(true) => {
                    best = depth;
                    break;
                }
                Some(false) => {}
                None => break,
            }
        }
        if ZO_MEMO.with(|m| m.borrow().len()) > 1 << 20 {
            ZO_MEMO.with(|m| m.borrow_mut().clear());
        }
        ZO_MEMO.with(|m| m.borrow_mut().insert((self.n as u8, *set), best));
        best
    }

    /// Whether `depth` comparators can sort `set`; `None` when the node budget ran out.
    fn fits(&self, set: &ZeroOneSet, depth: u8, nodes: &mut u32) -> Option<bool> {
        if self.is_sorted(set) {
            return Some(true);
        }
        if depth == 0 || self.lower_bound(set) > depth {
            return Some(false);
        }
        *nodes += 1;
        if *nodes > ZO_NODE_BUDGET {
            return None;
        }
        let mut seen: Vec<ZeroOneSet> = Vec::new();
        for p in 0..self.pairs.len() {
            let next = self.apply(set, p);
            if next == *set || seen.contains(&next) {
                continue;
            }
            seen.push(next);
            if self.fits(&next, depth - 1, nodes)? {
                return Some(true);
            }
        }
        Some(false)
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

/// Comparators of optimal-size sorting networks for `n = 2..=8`: 1, 3, 5, 9, 12, 16 and 19
/// comparators (OEIS A003075; Knuth, TAOCP vol. 3, 5.3.4, where the sizes for n <= 8 are
/// shown optimal; the networks for n = 6..8 are the size-optimal ones listed by Knuth, in the
/// layer order of B. Dobbelaere's list of smallest known networks), or `None` for other `n`.
/// Each pair `(i, j)` has `i < j`: afterwards position `i` holds the smaller value. Tests
/// check every network with the 0-1 principle.
pub fn classic_comparators(n: usize) -> Option<&'static [(usize, usize)]> {
    const NETS: [&[(usize, usize)]; 7] = [
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
        &[
            (0, 5),
            (1, 3),
            (2, 4),
            (1, 2),
            (3, 4),
            (0, 3),
            (2, 5),
            (0, 1),
            (2, 3),
            (4, 5),
            (1, 2),
            (3, 4),
        ],
        &[
            (0, 6),
            (2, 3),
            (4, 5),
            (0, 2),
            (1, 4),
            (3, 6),
            (0, 1),
            (2, 5),
            (3, 4),
            (1, 2),
            (4, 6),
            (2, 3),
            (4, 5),
            (1, 2),
            (3, 4),
            (5, 6),
        ],
        &[
            (0, 2),
            (1, 3),
            (4, 6),
            (5, 7),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (2, 4),
            (3, 5),
            (1, 4),
            (3, 6),
            (1, 2),
            (3, 4),
            (5, 6),
        ],
    ];
    n.checked_sub(2).and_then(|i| NETS.get(i).copied())
}

/// Whether `comparators` sort every input of `n` elements, by the 0-1 principle (Knuth,
/// TAOCP vol. 3, 5.3.4: a comparator network sorts every input iff it sorts all `2^n` inputs
/// of 0s and 1s). For networks only; `n <= 16`.
pub fn network_sorts(n: usize, comparators: &[(usize, usize)]) -> bool {
    (0u32..1 << n).all(|mut x| {
        // Bit `k` is position `k`; sorted means all zeros below all ones.
        for &(i, j) in comparators {
            let (bi, bj) = ((x >> i) & 1, (x >> j) & 1);
            if bi > bj {
                x ^= (1 << i) | (1 << j);
            }
        }
        let ones = x.count_ones() as usize;
        x == ((1u32 << n) - 1) ^ ((1u32 << (n - ones)) - 1)
    })
}

/// The classic network of [`classic_comparators`] for `task` as a kernel
/// ([`network_kernel`] over the task's scratch registers, or [`vector_network_kernel`] for a
/// vector task), or `None` when there is none for its `n` or the task has no spare register
/// for the compare-exchange's copy. The exchange uses `cmovg`, or `cmova` for unsigned
/// elements.
pub fn classic_kernel(task: &crate::task::Task) -> Option<Vec<Insn>> {
    let c = classic_comparators(task.n)?;
    if task.packed {
        return packed_network_kernel(&task.scratch, task.n, c);
    }
    if let Some(v) = task.vector {
        return vector_network_kernel(&task.scratch, task.n, c, v.avx(), task.copies);
    }
    let cc = Cond::G.for_element(task.element);
    (task.scratch.len() > task.n).then(|| network_kernel_with(&task.scratch, task.n, c, cc))
}

/// A sorting network as a kernel in the game's form: `n` loads into `scratch[0..n]`, for each
/// comparator `(i, j)` the compare-exchange `mov t, ri; cmp ri, rj; cmovg ri, rj; cmovg rj, t`
/// with `t = scratch[n]`, then `n` stores. Length: 4 per comparator + 2n instructions.
///
/// Panics if `scratch` has fewer than `n + 1` registers.
pub fn network_kernel(scratch: &[Reg], n: usize, comparators: &[(usize, usize)]) -> Vec<Insn> {
    network_kernel_with(scratch, n, comparators, Cond::G)
}

/// [`network_kernel`] with `cmov{cc}` for the exchange: `cc` is `G` or `Ge` (`cmp ri, rj`
/// then the move when `ri > rj`, or `ri >= rj`, which swaps equal values to the same effect).
pub fn network_kernel_with(
    scratch: &[Reg],
    n: usize,
    comparators: &[(usize, usize)],
    cc: Cond,
) -> Vec<Insn> {
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
                cc,
                dst: r[i],
                src: r[j],
            },
            Insn::Cmov {
                cc,
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

/// A sorting network as a kernel of the vector moves: `n` loads into `xmm{scratch[0..n]}`;
/// for each comparator `(i, j)`, with `avx`, `vpminsd t, ri, rj; vpmaxsd rj, ri, rj` into the
/// first free register `t` of `scratch` (which then holds element `i`, and `ri` becomes free);
/// without, `movdqa t, ri; pminsd ri, rj; pmaxsd rj, t`; then `n` stores from wherever each
/// element ended. Length: 2 (AVX) or 3 (SSE4.1) per comparator + 2n. Operands of the
/// three-operand form are in `scratch` order, as the game's move table has them.
///
/// `None` when `scratch` has no spare register, or without `avx` when `copies` is false.
pub fn vector_network_kernel(
    scratch: &[Reg],
    n: usize,
    comparators: &[(usize, usize)],
    avx: bool,
    copies: bool,
) -> Option<Vec<Insn>> {
    if scratch.len() <= n || (!avx && !copies) {
        return None;
    }
    let order = |r: Reg| scratch.iter().position(|&x| x == r);
    let mut at: Vec<Reg> = scratch[..n].to_vec();
    let mut prog: Vec<Insn> = (0..n)
        .map(|k| Insn::VLoad {
            dst: at[k],
            slot: k as u8,
            avx,
        })
        .collect();
    for &(i, j) in comparators {
        let t = *scratch.iter().find(|r| !at.contains(r))?;
        if avx {
            let (a, b) = if order(at[i]) < order(at[j]) {
                (at[i], at[j])
            } else {
                (at[j], at[i])
            };
            prog.push(Insn::Min { dst: t, a, b, avx });
            prog.push(Insn::Max {
                dst: at[j],
                a,
                b,
                avx,
            });
            at[i] = t;
        } else {
            let (ri, rj) = (at[i], at[j]);
            prog.push(Insn::VMov {
                dst: t,
                src: ri,
                avx,
            });
            prog.push(Insn::Min {
                dst: ri,
                a: ri,
                b: rj,
                avx,
            });
            prog.push(Insn::Max {
                dst: rj,
                a: rj,
                b: t,
                avx,
            });
        }
    }
    prog.extend((0..n).map(|k| Insn::VStore {
        slot: k as u8,
        src: at[k],
        avx,
    }));
    Some(prog)
}

/// A sorting network as a packed-lane kernel, the in-register form of Bramas (arXiv
/// 1704.08579, section 3) and vqsort (arXiv 2205.05982): `vmovdqu v, [rdi]` (lane `k` holds
/// element `k`); for each layer of disjoint comparators (greedily, in the network's order),
/// `vpshufd t, v, imm` (each compared lane gets its partner's value, the others their own),
/// `vpminsd m, v, t`, `vpmaxsd t, v, t`, `vpblendd v, m, t, imm` (the maximum into the higher
/// lane of each comparator); then `vmovdqu [rdi], v`, with `v, t, m` the first three
/// registers of `scratch`. Length: 4 per layer + 2 (14 for n = 4).
///
/// `None` unless `n` is 4 (one xmm register of 32-bit lanes) and `scratch` has three registers.
pub fn packed_network_kernel(
    scratch: &[Reg],
    n: usize,
    comparators: &[(usize, usize)],
) -> Option<Vec<Insn>> {
    if n != crate::game::cpu::LANES || scratch.len() < 3 {
        return None;
    }
    let (v, t, m) = (scratch[0], scratch[1], scratch[2]);
    // Operands of the commuting minimum and maximum in scratch order, as the move table has them.
    let (a, b) = (v, t);
    let mut layers: Vec<Vec<(usize, usize)>> = Vec::new();
    for &(i, j) in comparators {
        // A comparator joins the last layer when it shares no lane with it, else opens one.
        match layers.last_mut() {
            Some(l) if l.iter().all(|&(x, y)| x != i && x != j && y != i && y != j) => {
                l.push((i, j))
            }
            _ => layers.push(vec![(i, j)]),
        }
    }
    let mut prog = vec![Insn::PLoad { dst: v }];
    for layer in layers {
        let mut lane_from: [usize; 4] = [0, 1, 2, 3];
        let mut high = 0u8;
        for &(i, j) in &layer {
            lane_from[i] = j;
            lane_from[j] = i;
            high |= 1 << j;
        }
        let imm = lane_from
            .iter()
            .enumerate()
            .fold(0u8, |x, (l, &f)| x | (f as u8) << (2 * l));
        prog.extend([
            Insn::Shuf {
                dst: t,
                src: v,
                imm,
            },
            Insn::Min {
                dst: m,
                a,
                b,
                avx: true,
            },
            Insn::Max {
                dst: t,
                a,
                b,
                avx: true,
            },
            Insn::Blend {
                dst: v,
                a: m,
                b: t,
                imm: high,
            },
        ]);
    }
    prog.push(Insn::PStore { src: v });
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Optimal sorting networks have 1, 3, 5, 9 comparators for n = 2, 3, 4, 5 (Knuth, TAOCP
    /// vol. 3, 5.3.4).
    #[test]
    fn classic_networks_have_the_known_sizes_and_lengths() {
        for (n, comparators, len) in [
            (2, 1, 8),
            (3, 3, 18),
            (4, 5, 28),
            (5, 9, 46),
            (6, 12, 60),
            (7, 16, 78),
            (8, 19, 92),
        ] {
            let c = classic_comparators(n).unwrap();
            assert_eq!(c.len(), comparators);
            assert!(c.iter().all(|&(i, j)| i < j && j < n));
            assert!(network_sorts(n, c), "n = {n}");
            assert!(!network_sorts(n, &c[..c.len() - 1]), "n = {n}");
            assert_eq!(network_kernel(&Reg::ALL, n, c).len(), len);
        }
        assert_eq!(classic_comparators(9), None);
    }

    #[test]
    fn zero_one_distances_match_the_permutation_distances_on_small_n() {
        // The full 0-1 set of n elements needs S(n) comparators; exact for n <= 4 within the
        // node budget, and the greedy network is never shorter than the optimum.
        for (n, want) in [(2u8, 1u8), (3, 3), (4, 5)] {
            let z = ZeroOne::new(n as usize);
            let mut all = [0u64; 4];
            for x in 0..1u32 << n {
                all[(x / 64) as usize] |= 1 << (x % 64);
            }
            assert_eq!(z.comparators(&all), want, "n = {n}");
            assert!(z.greedy(&all) >= want);
            assert!(z.lower_bound(&all) <= want);
        }
        // After the first 11 comparators of the 12-comparator network for n = 6, one is left.
        let z = ZeroOne::new(6);
        let c = classic_comparators(6).unwrap();
        let mut set = [0u64; 4];
        for x in 0..1u32 << 6 {
            let mut y = x;
            for &(i, j) in &c[..11] {
                if (y >> i) & 1 == 1 && (y >> j) & 1 == 0 {
                    y ^= (1 << i) | (1 << j);
                }
            }
            set[(y / 64) as usize] |= 1 << (y % 64);
        }
        assert_eq!(z.comparators(&set), 1);
        assert!(!z.is_sorted(&set));
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
