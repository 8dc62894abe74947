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
        let inputs = weak_orderings(n);
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
    let mut out = Vec::new();
    let mut cur = vec![0u8; n];
    let total = (n as u64).pow(n as u32);
    for code in 0..total {
        let mut c = code;
        for x in cur.iter_mut().rev() {
            *x = (c % n as u64) as u8;
            c /= n as u64;
        }
        let max = *cur.iter().max().unwrap_or(&0) as usize;
        if (0..=max).all(|v| cur.contains(&(v as u8))) {
            out.push(cur.clone());
        }
    }
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
