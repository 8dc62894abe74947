//! Test vectors for sort tasks: every weak ordering of `n` values.
//!
//! Why this set is a proof for our game: the game's instructions only move values (`mov`),
//! compare them (`cmp`) and conditionally move them (`cmovcc` on signed conditions). None of
//! them computes a new value, so every register and memory slot holds, at every step, one of the
//! input values (or a poison never read, which the game forbids), and every flag outcome is the
//! signed comparison of two input values. Hence the path through the program and the *index*
//! of the input that ends in each output slot depend only on the outcomes of comparisons
//! between inputs, that is, on the order type (weak ordering) of the input tuple. Two inputs of
//! the same order type produce outputs of the same order type with the same provenance, so if
//! the kernel sorts one representative of each weak ordering, it sorts every input. There are
//! 13, 75, 541, 4683 weak orderings of 3, 4, 5, 6 values (the ordered Bell numbers).
//! We use the representative whose values are the dense ranks 0..k-1.

/// The test vectors of a sort task with `n` elements.
#[derive(Clone, Debug)]
pub struct TestVectors {
    /// Number of elements per vector.
    pub n: usize,
    /// `inputs[t][k]`: element `k` of test vector `t`, a dense rank in `0..n`.
    pub inputs: Vec<Vec<u8>>,
    /// `sorted[t][k]`: the expected content of slot `k` after sorting test vector `t`.
    pub sorted: Vec<Vec<u8>>,
}

impl TestVectors {
    /// Every weak ordering of `n` values, in lexicographic order of the dense-rank tuples.
    pub fn new(n: usize) -> TestVectors {
        TestVectors::from_inputs(n, weak_orderings(n))
    }

    /// Test vectors with the given inputs (dense-rank tuples of `n` elements) and their
    /// sorted forms.
    pub fn from_inputs(n: usize, inputs: Vec<Vec<u8>>) -> TestVectors {
        let sorted = inputs
            .iter()
            .map(|v| {
                let mut s = v.clone();
                s.sort_unstable();
                s
            })
            .collect();
        TestVectors { n, inputs, sorted }
    }

    /// The 0-1 test vectors of `n` elements: every tuple over {0, 1} but all ones (the same
    /// weak ordering as all zeros), in lexicographic order: `2^n - 1` vectors. By the 0-1
    /// principle (Knuth, TAOCP vol. 3, 5.3.4) a comparator network sorts every input iff it
    /// sorts these; for other mov/cmp/cmov programs they are a necessary condition only, so
    /// the search may use them to find candidates but never to call a kernel verified.
    pub fn zero_one(n: usize) -> TestVectors {
        let inputs: Vec<Vec<u8>> = (0..(1u32 << n) - 1)
            .map(|code| (0..n).map(|k| ((code >> (n - 1 - k)) & 1) as u8).collect())
            .collect();
        TestVectors::from_inputs(n, inputs)
    }

    /// The 0-1 test vectors ([`TestVectors::zero_one`]) followed by `k` permutations of
    /// `0..n` (all of them when there are at most `k`; else `k` distinct ones drawn by a fixed
    /// ChaCha8 stream, so every run uses the same). The 0-1 vectors carry the estimate; the
    /// permutations weed out most programs that sort 0s and 1s but not distinct values (on
    /// sort5 the 0-1 vectors alone let 139,673 such candidates through in 5 s of search).
    pub fn zero_one_and_permutations(n: usize, k: usize) -> TestVectors {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut inputs = TestVectors::zero_one(n).inputs;
        let count: usize = (1..=n).product();
        let mut perms: Vec<Vec<u8>> = Vec::new();
        if count <= k {
            perms = weak_orderings(n)
                .into_iter()
                .filter(|v| {
                    let mut s = v.clone();
                    s.sort_unstable();
                    s.iter().enumerate().all(|(i, &x)| x as usize == i)
                })
                .collect();
        } else {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed_0001 + n as u64);
            let mut seen = std::collections::HashSet::new();
            while perms.len() < k {
                let mut p: Vec<u8> = (0..n as u8).collect();
                p.shuffle(&mut rng);
                if seen.insert(p.clone()) {
                    perms.push(p);
                }
            }
        }
        inputs.extend(perms);
        TestVectors::from_inputs(n, inputs)
    }

    /// Number of test vectors.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there are none (never, for n >= 1).
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Every weak ordering of `n` items as a dense-rank tuple: the tuples over `0..n` whose set of
/// values is `{0, .., k-1}` for some `k`. Count: the ordered Bell (Fubini) number of `n`.
pub fn weak_orderings(n: usize) -> Vec<Vec<u8>> {
    /// Extends `cur[..k]` (values used: bit mask `used`) in lexicographic order, skipping
    /// prefixes that can no longer become dense.
    fn extend(n: usize, k: usize, used: u32, cur: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
        let top = 32 - used.leading_zeros(); // one past the largest value used
        let gaps = top - used.count_ones(); // values below it still missing
        if gaps as usize > n - k {
            return;
        }
        if k == n {
            out.push(cur.clone());
            return;
        }
        for v in 0..n as u8 {
            cur.push(v);
            extend(n, k + 1, used | 1 << v, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    extend(n, 0, 0, &mut Vec::with_capacity(n), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_the_ordered_bell_numbers() {
        assert_eq!(weak_orderings(1).len(), 1);
        assert_eq!(weak_orderings(2).len(), 3);
        assert_eq!(weak_orderings(3).len(), 13);
        assert_eq!(weak_orderings(4).len(), 75);
        assert_eq!(weak_orderings(5).len(), 541);
        assert_eq!(weak_orderings(6).len(), 4_683);
        assert_eq!(weak_orderings(7).len(), 47_293);
        assert_eq!(weak_orderings(8).len(), 545_835);
    }

    #[test]
    fn zero_one_vectors_are_every_0_1_tuple_but_all_ones() {
        for n in 2..=8 {
            let z = TestVectors::zero_one(n);
            assert_eq!(z.len(), (1 << n) - 1);
            assert!(z.inputs.iter().all(|v| v.contains(&0)));
            assert!(z.inputs.contains(&vec![0; n]));
            assert_eq!(
                z.sorted.last().unwrap().iter().filter(|&&x| x == 0).count(),
                1
            );
        }
    }

    #[test]
    fn includes_ties_and_all_permutations() {
        let w = weak_orderings(3);
        assert!(w.contains(&vec![1, 1, 0]));
        assert!(w.contains(&vec![0, 0, 0]));
        assert!(w.contains(&vec![2, 1, 0]));
        assert!(!w.contains(&vec![0, 2, 2]), "ranks must be dense");
    }
}
