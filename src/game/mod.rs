//! The sorting game: AlphaDev's assembly game (Nature 618:257, 2023, Methods) for sort tasks.
//!
//! A state is the program so far plus the [`CpuState`] on every test vector. A move is one
//! instruction from the task's move table ([`SortGame::moves`]). A program is correct when,
//! on every test vector, memory slot `k` ends holding the `k`-th smallest input.
//!
//! ## Reward: correctness first, then length
//! A state is a solution exactly when, for every slot `k`, some register holds the `k`-th
//! smallest input on every test vector; the `n` stores then finish a kernel that the emulator
//! has already proved correct. So the game never ends in a wrong program: an episode ends in a
//! correct kernel or in a dead end (no legal move, or the length cap of twice the classic
//! network). A correct kernel of total length `L` is worth `1 - L / (2 * network length)`;
//! dead ends are never backed up. Instead of AlphaDev's shaped reward (2 x the change in
//! correctly placed elements, Nature 2023, Methods), partial progress enters through the
//! estimate (see [`SortGame`]'s `estimate`): the instructions a sorting network would still
//! need, which measures how much sorting is left rather than how many slots happen to hold
//! their value already (a measure that stays flat for most of a program).
//!
//! ## Objective: length (default) or latency
//! Under [`Objective::Latency`] the cost of a program is its latency in the static model
//! ([`crate::latency::model`], in 1/12 cycles) times [`LATENCY_WEIGHT`], plus its length: latency
//! first, then length. Each state carries the model's running state (when each register and
//! the flags are ready, how many instructions use each pipe), so the cost of a prefix is exact
//! and never falls as instructions are appended. The transposition key then also holds the
//! ready times and pipe use, so that two states it merges have the same future costs. Under
//! latency the pruning rules below keep their justification for the critical path: deleting
//! an instruction never delays another's sources, renaming registers or mirroring flags
//! changes no time, and `mov d, s` (latency 0, no pipe, no flags read) is never slower than
//! the `cmovcc d, s` it replaces. The model also schedules instructions on pipes, greedily in
//! program order, and a greedy schedule can in rare cases get longer when an instruction is
//! removed (a list-scheduling anomaly, R. L. Graham, 1969): for that part, rules 3 and 4 are
//! pruning that could in principle lose a latency optimum of the model, not a proof. The
//! branch-and-bound bound ([`Environment::lower_bound`]) stays admissible: it uses only
//! dependency chains, which pipes can only lengthen.
//!
//! ## The searched space (restrictions, which can cost length)
//! * **Loads first, stores last** (memory-operand tasks: stores last; see below). Every
//!   program the search builds starts with the `n` loads
//!   `mov scratch[k], [rdi+4k]` and ends with `n` stores; between them is a register-only core
//!   of `mov r,r`, `cmp r,r` and `cmovcc r,r`. A sort kernel needs at least `n` loads and `n`
//!   stores, so this adds exactly `2n` to the core; it excludes programs that reuse a register
//!   after storing it or keep values in memory, which could in principle be shorter when
//!   registers run out (never observed with 8 scratch registers and `n <= 5`). AlphaDev
//!   restricts likewise (each slot read once and written once).
//! * **Past n = 5, states compared on the search vectors only.** When the task is searched on
//!   its 0-1 test vectors ([`Task::search_vectors`]), a solution of the game is a candidate
//!   that must pass the proof on every weak ordering before it counts ([`SortGame::is_exact`]),
//!   and the rules below that compare columns or states do so on the search vectors: rule 3
//!   refuses a move that changes only what those vectors do not show, and rule 6 merges
//!   states that agree on them. Both are sound for the game on those vectors, not for the
//!   proof, so there they restrict the space.
//!
//! ## Sound pruning (never discards every cheapest correct completion)
//! 1. **Reads of undefined registers or flags** are refused. A `cmovcc d, s` with `d`
//!    undefined can always be replaced by `mov d, s`: the original is correct for every poison
//!    value of `d`, in particular for the value of `s`, and on the test vectors where the
//!    condition holds both write `s`. `mov`/`cmp` from an undefined register make the result
//!    depend on the poison, which a correct program cannot use.
//! 2. **Lost values.** If on some test vector an input value is no longer held by any
//!    register, it can never return (the core does not reload), so no correct completion
//!    exists.
//! 3. **Moves that change nothing** (a `mov` between equal columns, a `cmovcc` whose condition
//!    never holds where the registers differ, a `cmp` that leaves the flags equal up to
//!    mirroring or that compares equal columns) are refused: deleting them gives a shorter
//!    program with the same effect.
//! 4. **Two `cmp` in a row**: the first one's flags are never read, so it can be deleted.
//! 5. **Symmetry.** Undefined registers are interchangeable, so a write to an undefined
//!    register uses the lowest one; `cmp a, b` is offered only with `a` before `b` in the
//!    task's register order, because `cmp b, a` followed by conditions `c` equals `cmp a, b`
//!    followed by the mirrored conditions (`l`<->`g`, `le`<->`ge`), all of which are moves.
//! 6. **Transpositions.** [`Environment::key`] is invariant under renaming registers and
//!    mirroring the flags; the search drops a state already reached at the same or lower cost.
//! 7. **Branch and bound** with [`Environment::lower_bound`]: one `cmovcc` is needed for each
//!    sorted column not yet held by any register (a `mov` only copies an existing column), a
//!    `cmp` before the first `cmovcc`, and the `n` stores.

//!
//! ## Vector tasks (`[isa] vector`)
//! A vector task plays other moves on the same columns: `movd xmm, [rdi+4k]` loads and
//! `movd [rdi+4k], xmm` stores, the lane minimum and maximum (`vpminsd d, a, b` with AVX, the
//! two-operand `pminsd d, s` with SSE4.1) and, when the task lists it, `movdqa d, s`. Each
//! register holds one element in lane 0. A minimum or maximum selects one of its inputs by
//! their order, so the order-type argument of the proof holds for these programs as it does
//! for cmov ones. The rules above carry over, each for the same reason:
//! 1. a minimum or maximum that reads an undefined register is refused: a correct program
//!    is correct for every poison value, in particular when every undefined register holds
//!    the type's largest value `T`. Then each minimum with `T` is a copy of its other
//!    operand, each maximum with `T` yields `T` again, and `T` never reaches an output (the
//!    output holds the inputs). Replacing the first kind by copies and deleting the second
//!    (whose results feed only more of the same) gives a program of min, max and copies
//!    that reads nothing undefined, is no longer, and sorts every input without `T`, hence
//!    every order type, hence every input. In an SSE4.1 task a copy is a `movdqa` of the
//!    same length (when the task lists `movdqa`; when not, the rule is a restriction); in an
//!    AVX task a copy can be deleted (below);
//! 2. lost values, 3. moves that change nothing, 6. transpositions (there are no flags) and
//!    the lowest-undefined-register half of 5. hold as stated;
//! 5. both operations commute, so the three-operand forms are offered with `a` before `b`;
//! 7. every sorted column not yet held needs one minimum or maximum (a copy only copies),
//!    and the `n` stores; no `cmp`.
//!
//! **Copies in AVX tasks.** The built-in AVX tasks leave `movdqa` out, which loses no length:
//! a copy `d = x` never frees a register, and with three-operand moves it can be deleted. Read
//! `x` wherever the program read `d`; if `x` is overwritten while `d` is still needed, let the
//! overwriting move write `d` instead (free now that the copy is gone) and swap the names of
//! `d` and `x` from there on. The result computes the same values in one instruction fewer,
//! and under latency it delays nothing (a copy costs no time in the model).
//!
//! Restrictions specific to vector tasks of one element per register: loads first, stores
//! last as for scalar tasks.
//!
//! ## Memory operands (`[isa] memory_operands = true`)
//! A task with memory operands adds `cmp a, [rdi+4k]` and `cmovcc d, [rdi+4k]` to the scalar
//! moves, and makes the loads moves of the core: the program starts with nothing loaded and
//! may load a slot where it needs it (or never, reading it through memory operands). The
//! stores still come last, so the array holds the inputs throughout the core: each slot is a
//! read-only column beside the registers. Each memory operand compares or selects an input
//! value, so the order-type argument of the proof holds. The rules, for these moves:
//! 1. `cmovcc d, [slot]` with `d` undefined is refused: `mov d, [slot]` (a load) does the
//!    same, as for `cmovcc d, s`; loads read memory, which is always defined;
//! 2. lost values: none can be lost (the array keeps them), so the rule prunes nothing;
//! 3. a load or `cmovcc` that changes nothing, a `cmp` with a slot that leaves the flags as
//!    they were (or mirrored) or all equal, is refused as before;
//! 4. a `cmp` with a slot counts as a `cmp` for "two `cmp` in a row";
//! 5. `cmp [slot], a` is left out: it is `cmp a, [slot]` with mirrored conditions, which are
//!    moves too; a load into an undefined register uses the lowest one;
//! 6. transpositions as before (memory is the same in every state of the core);
//! 7. the bound as before: the stores, a `cmovcc` for each sorted column no register holds
//!    (a load only brings an input, never a sorted column of n >= 2), and a `cmp` before it.
//!
//! The estimate counts the slots as columns (for n <= 4 always; past that while the registers
//! cannot hold every value). Restrictions: stores last (a slot is written once, at the end),
//! so a program that keeps a value in memory after reusing its slot is outside the space.
//!
//! ## Packed lanes (`[isa] packed = true`)
//! A packed task holds the whole array of four 32-bit elements in one xmm register: the
//! program opens with `vmovdqu xmm0, [rdi]` (lane `k` = element `k`) and closes with one
//! `vmovdqu [rdi], xmm` of a register whose lanes hold the sorted columns in order. Between
//! them the moves are `vpshufd d, s, imm` (every immediate), `vpblendd d, a, b, imm` (the 14
//! immediates that take lanes from both `a != b`) and the lane minimum and maximum on all
//! four lanes. The CPU state keeps a column per lane ([`CpuState::packed`]) with definedness
//! per lane, and the rules that look at columns (lost values, the estimate) look at lanes.
//! Each move selects or moves input values (lanes by immediates, minima and maxima by order),
//! so the weak-ordering proof covers these programs. The pruning, each rule for the reason it
//! has above:
//! 1. a move that reads a register with no defined lane is refused, as is a minimum or maximum
//!    whose sources share no defined lane, and any move that leaves its destination with no
//!    defined lane: every lane computed from an undefined lane is undefined, a store of an
//!    undefined lane faults, so such a register can never reach the output, and deleting the
//!    move changes no lane that can (the destination then keeps its old lanes, which every
//!    later read treats no worse). Reading a register with *some* undefined lanes is allowed:
//!    its other lanes may be what the program needs;
//! 2. lost values: as above, over the defined lanes;
//! 3. moves that change nothing: the destination's defined lanes and definedness unchanged;
//! 5. a register none of whose lanes is defined is written only as the lowest such register
//!    (they are interchangeable); the minimum and maximum take `a` before `b`;
//! 6. transpositions: the key is invariant under renaming registers, not under permuting
//!    lanes (lane positions matter to every later shuffle, blend and store);
//! 7. the bound: the store, and one more move unless a register already holds the sorted
//!    lanes in order.
//!
//! Restrictions specific to packed tasks: `n = 4` and 32-bit elements only (one xmm register;
//! no ymm, no partial loads for other `n`), three registers (xmm0-xmm2: four lane columns each
//! in the game's 14), the one load first and the one store last, and `vpshufd` as the only
//! shuffle (no `vpermd`, `vpalignr`, `vpunpck*`, no shuffles across two registers). The
//! estimate prices a layer of two comparators at 4 moves; it guides, never cuts. Callers pass
//! an 8-byte-aligned array (`layout.align = 8`, checked by the task file): `vmovdqu` raises no
//! alignment-check fault there (Intel SDM vol. 3A, 6.15).

pub mod cpu;
pub mod network;

pub use cpu::{CpuState, Fault, FLAG_EQ, FLAG_GT, FLAG_LT};

use crate::isa::{Insn, Reg};
use crate::latency::model::{ModelState, Op, Uarch};
use crate::search::{hash_bytes, mix64, Action, Environment};
use crate::task::{Task, TestVectors};

/// What a game's cost measures.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Program length in instructions (loads and stores included, `ret` excluded).
    #[default]
    Length,
    /// Latency in the static model, then length: cost = [`LATENCY_WEIGHT`] x model ticks
    /// (1/12 cycle) + length.
    Latency,
}

/// Cost units per model tick (1/12 cycle) under [`Objective::Latency`]: one cycle (48 units)
/// outweighs any difference in length the search meets.
pub const LATENCY_WEIGHT: u32 = 4;

/// The sort game for one task.
pub struct SortGame {
    task: Task,
    objective: Objective,
    tv: TestVectors,
    moves: Vec<Insn>,
    targets: Vec<Vec<u8>>,
    /// The test vectors the estimate looks at: the permutations when the search plays on
    /// every weak ordering, all of them when it plays on the 0-1 vectors.
    perms: Vec<usize>,
    /// Per test vector: bit `v` set when value `v` occurs in the input.
    value_sets: Vec<u8>,
    /// Per test vector of `perms`: how many ones the input has (0-1 vectors only).
    weights: Vec<u8>,
    /// Exact network distances (n <= 5) over permutations.
    networks: Option<network::Networks>,
    /// Network distances over sets of 0-1 vectors (n > 5, search on the 0-1 vectors).
    zero_one: Option<network::ZeroOne>,
    /// The registers with a column in the CPU state, in column order.
    regs: Vec<Reg>,
    /// `None` when the search plays on every weak ordering (a solution is proved); else the
    /// proof of candidates on every weak ordering, which a solution of the game must pass.
    proof: Option<Proof>,
    initial: GameState,
}

/// The proof of the game's candidate solutions when the search plays on the 0-1 vectors:
/// a candidate kernel is run on the weak orderings with at most three distinct values first
/// (a quick filter), then on every weak ordering. Results are cached by program.
struct Proof {
    few: TestVectors,
    all: std::sync::OnceLock<TestVectors>,
    cache: std::sync::Mutex<std::collections::HashMap<Vec<Insn>, bool>>,
    /// Candidates proved / refuted so far (for reports).
    counts: [std::sync::atomic::AtomicU64; 2],
}

/// A state of the sort game: CPU state on all test vectors plus bookkeeping.
#[derive(Clone, Debug)]
pub struct GameState {
    /// Registers, memory and flags on every test vector.
    pub cpu: CpuState,
    /// Instructions so far, the loads included.
    pub len: u32,
    /// Whether the last instruction was a `cmp`.
    pub last_cmp: bool,
    /// The last [`RECENT`] moves of the core, most recent first (`None` before the first
    /// move). Input to the network's program encoder only: the transposition key and every
    /// rule of the game ignore it, since the future depends on the CPU state alone.
    pub recent: [Option<Insn>; RECENT],
    /// The latency model's running state over the program so far, kept under
    /// [`Objective::Latency`] only (under length it stays as after the loads).
    pub model: ModelState,
    /// The core so far, kept only when the search plays on the 0-1 vectors (so that a
    /// candidate solution can be proved on every weak ordering); empty otherwise.
    pub core: Vec<Insn>,
}

/// How many of the latest moves a [`GameState`] remembers (for the network's program encoder).
pub const RECENT: usize = 4;

impl SortGame {
    /// Builds the game for a sort task: the move table over the task's scratch registers and
    /// conditions, the test vectors (every weak ordering) and the initial state after the
    /// loads.
    pub fn new(task: &Task) -> SortGame {
        SortGame::with_objective(task, Objective::Length)
    }

    /// [`SortGame::new`] with the given objective.
    pub fn with_objective(task: &Task, objective: Objective) -> SortGame {
        let tv = task.search_vectors();
        let exact = !task.zero_one_search;
        let regs = &task.scratch;
        let moves = match task.vector {
            _ if task.packed => packed_moves(regs),
            None if task.memory_operands => {
                let mut m = scalar_moves(regs, &task.conds);
                m.extend(memory_moves(regs, &task.conds, tv.n));
                m
            }
            None => scalar_moves(regs, &task.conds),
            Some(v) => vector_moves(regs, v.avx(), task.copies),
        };
        let n = tv.n;
        let targets = (0..n)
            .map(|k| tv.sorted.iter().map(|s| s[k]).collect())
            .collect();
        let perms: Vec<usize> = if exact {
            (0..tv.len())
                .filter(|&t| {
                    tv.sorted[t]
                        .iter()
                        .enumerate()
                        .all(|(k, &v)| v as usize == k)
                })
                .collect()
        } else {
            // The 0-1 vectors come first, then the permutations.
            (0..tv.len()).collect()
        };
        let zo_rows = (1usize << n) - 1;
        let weights: Vec<u8> = perms
            .iter()
            .take(zo_rows)
            .map(|&t| tv.inputs[t].iter().sum::<u8>())
            .collect();
        let value_sets = tv
            .inputs
            .iter()
            .map(|v| v.iter().fold(0u8, |m, &x| m | 1 << x))
            .collect();
        let columns = task.columns();
        let mut cpu = task.cpu_state(&tv);
        let mut model = ModelState::default();
        let loads = load_moves(task, n);
        for &load in &loads {
            cpu.apply(load).expect("loads are always legal");
            model.push(&Op::of_insn(load));
        }
        let initial = GameState {
            cpu,
            len: loads.len() as u32,
            last_cmp: false,
            recent: [None; RECENT],
            model,
            core: Vec::new(),
        };
        let networks = (exact && n <= network::MAX_NET_N).then(|| network::Networks::new(n));
        let zero_one = (!exact).then(|| network::ZeroOne::new(n));
        let proof = (!exact).then(|| Proof {
            few: TestVectors::from_inputs(
                n,
                crate::task::weak_orderings(n)
                    .into_iter()
                    .filter(|v| v.iter().all(|&x| x <= 2))
                    .collect(),
            ),
            all: std::sync::OnceLock::new(),
            cache: Default::default(),
            counts: Default::default(),
        });
        SortGame {
            task: task.clone(),
            objective,
            tv,
            moves,
            targets,
            perms,
            value_sets,
            weights,
            networks,
            zero_one,
            regs: Reg::ALL[..columns].to_vec(),
            proof,
            initial,
        }
    }

    /// The classic sorting network ([`network::classic_comparators`], optimal size for
    /// n <= 8) as a sequence of this game's moves (after the loads; the stores follow), played
    /// by the game's own rules; `None` when the task has no spare register for the exchange's
    /// copy or neither `cmovg` nor `cmovge`. Searches start with it as their incumbent, so
    /// that none returns anything longer.
    pub fn network_actions(&self) -> Option<Vec<Action>> {
        let n = self.tv.n;
        let comparators = network::classic_comparators(n)?;
        if self.task.vector.is_some() {
            let kernel = network::classic_kernel(&self.task)?;
            let (loads, stores) = (self.loads().len(), self.store_count());
            return self.actions_of(&kernel[loads..kernel.len() - stores]);
        }
        let el = self.task.element;
        let cc = [crate::isa::Cond::G, crate::isa::Cond::Ge]
            .map(|c| c.for_element(el))
            .into_iter()
            .find(|c| self.task.conds.contains(c))?;
        if self.task.scratch.len() <= n {
            return None;
        }
        let kernel = network::network_kernel_with(&self.task.scratch, n, comparators, cc);
        // A memory-operand task plays the loads as moves too.
        self.actions_of(&kernel[self.loads().len()..kernel.len() - n])
    }

    /// The actions that play `core` (a program between the loads and the stores) by the game's
    /// rules, if every instruction is a legal move and they end in a solution.
    fn actions_of(&self, core: &[Insn]) -> Option<Vec<Action>> {
        let mut state = self.initial.clone();
        let mut actions = Vec::new();
        for insn in core {
            let a = self.moves.iter().position(|m| m == insn)? as Action;
            state = self.step(&state, a)?;
            actions.push(a);
        }
        self.solution_cost(&state).map(|_| actions)
    }

    /// Whether the search plays on every weak ordering, so that a solution of the game is a
    /// proved kernel; `false` when it plays on the 0-1 vectors (n > 5), where a solution must
    /// also pass the proof on every weak ordering ([`SortGame::proof_counts`]).
    pub fn is_exact(&self) -> bool {
        self.proof.is_none()
    }

    /// When the search plays on the 0-1 vectors: how many candidate kernels (solutions on the
    /// 0-1 vectors) passed and failed the proof on every weak ordering so far.
    pub fn proof_counts(&self) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.proof
            .as_ref()
            .map(|p| (p.counts[0].load(Relaxed), p.counts[1].load(Relaxed)))
    }

    /// Whether the kernel `loads, core, stores` sorts every weak ordering (cached); always
    /// true when the game plays on every weak ordering.
    fn proves(&self, core: &[Insn], stores: &[Reg]) -> bool {
        let Some(p) = &self.proof else {
            return true;
        };
        let mut program = self.loads();
        program.extend_from_slice(core);
        program.extend(self.stores(stores));
        if let Some(&ok) = p.cache.lock().expect("proof cache").get(&program) {
            return ok;
        }
        let sorts = |tv: &TestVectors| {
            let mut cpu = self.task.cpu_state(tv);
            program.iter().all(|&i| cpu.apply(i).is_ok()) && check_sorted(tv, &cpu).is_ok()
        };
        let ok = sorts(&p.few) && sorts(p.all.get_or_init(|| TestVectors::new(self.tv.n)));
        p.counts[usize::from(!ok)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        p.cache.lock().expect("proof cache").insert(program, ok);
        ok
    }

    /// This game with the latency model's table for `uarch` (the default is Zen 4): what
    /// `--objective latency` costs and the model's figures in logs follow.
    pub fn with_uarch(mut self, uarch: Uarch) -> SortGame {
        let mut model = ModelState::new(uarch);
        for load in self.loads() {
            model.push(&Op::of_insn(load));
        }
        self.initial.model = model;
        self
    }

    /// The latency model's table.
    pub fn uarch(&self) -> Uarch {
        self.initial.model.uarch
    }

    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// What the game's cost measures.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// The cost of a program (prefix) with model state `m` and `len` instructions.
    fn cost_of(&self, m: &ModelState, len: u32) -> u32 {
        match self.objective {
            Objective::Length => len,
            Objective::Latency => LATENCY_WEIGHT * m.ticks().0 + len,
        }
    }

    /// The test vectors.
    pub fn test_vectors(&self) -> &TestVectors {
        &self.tv
    }

    /// The move table of the core: `moves()[a]` is action `a`.
    pub fn moves(&self) -> &[Insn] {
        &self.moves
    }

    /// The loads that open every program.
    pub fn loads(&self) -> Vec<Insn> {
        load_moves(&self.task, self.tv.n)
    }

    /// How many stores close a program: `n`, or 1 in a packed task.
    fn store_count(&self) -> usize {
        if self.task.packed {
            1
        } else {
            self.tv.n
        }
    }

    /// The stores that close a program: slot `k` from `regs[k]` (a `movd` in a vector task);
    /// in a packed task the one `vmovdqu` from `regs[0]`.
    fn stores(&self, regs: &[Reg]) -> Vec<Insn> {
        if self.task.packed {
            return vec![Insn::PStore { src: regs[0] }];
        }
        regs.iter()
            .enumerate()
            .map(|(k, &src)| match self.task.vector {
                None => Insn::Store { slot: k as u8, src },
                Some(v) => Insn::VStore {
                    slot: k as u8,
                    src,
                    avx: v.avx(),
                },
            })
            .collect()
    }

    /// Instructions per compare-exchange in the task's moves: `cmp`, `mov`, two `cmovcc` (4);
    /// with AVX `vpminsd` and `vpmaxsd` into a free register (2); with SSE4.1 a `movdqa` copy
    /// and the two-operand `pminsd`, `pmaxsd` (3).
    /// In a packed task, 2: a layer of two comparators is `vpshufd`, `vpminsd`, `vpmaxsd`,
    /// `vpblendd`.
    pub fn exchange_cost(&self) -> u32 {
        match self.task.vector {
            Some(_) if self.task.packed => 2,
            None => 4,
            Some(v) if v.avx() => 2,
            Some(_) => 3,
        }
    }

    /// When the register column `r` is ready in the latency model (a general-purpose register,
    /// or `xmm{r}` in a vector task).
    fn ready(&self, m: &ModelState, r: Reg) -> u16 {
        // In a packed task the column is a lane of xmm{r / 4}.
        let r = if self.task.packed {
            Reg::from_index(r.index() / cpu::LANES)
        } else {
            r
        };
        m.ready[crate::latency::model::ready_index(r, self.task.vector.is_some())]
    }

    /// For each slot, a register holding its sorted column, if every slot has one; in a
    /// packed task, the one xmm register whose lanes hold the sorted columns in order.
    fn store_regs(&self, s: &GameState) -> Option<Vec<Reg>> {
        if self.task.packed {
            return self
                .task
                .scratch
                .iter()
                .copied()
                .find(|&r| {
                    s.cpu.lanes_defined(r) == 0xF
                        && self
                            .targets
                            .iter()
                            .enumerate()
                            .all(|(k, col)| s.cpu.column(cpu::LANES * r.index() + k) == &col[..])
                })
                .map(|r| vec![r]);
        }
        self.targets
            .iter()
            .map(|col| {
                self.task
                    .scratch
                    .iter()
                    .copied()
                    .find(|&r| s.cpu.reg_defined(r) && s.cpu.reg(r) == &col[..])
            })
            .collect()
    }

    /// For a solution of the game, the register each slot is stored from: the first holding
    /// its sorted column when the game plays on every weak ordering; on the 0-1 vectors, where
    /// registers that agree there may differ elsewhere, the first choice (of at most 256) whose
    /// kernel passes the proof on every weak ordering. `None` if there is none.
    fn proven_stores(&self, s: &GameState) -> Option<Vec<Reg>> {
        if self.proof.is_none() {
            return self.store_regs(s);
        }
        if self.task.packed {
            let stores = self.store_regs(s)?;
            return self.proves(&s.core, &stores).then_some(stores);
        }
        let options: Vec<Vec<Reg>> = self
            .targets
            .iter()
            .map(|col| {
                self.regs
                    .iter()
                    .copied()
                    .filter(|&r| s.cpu.reg_defined(r) && s.cpu.reg(r) == &col[..])
                    .collect()
            })
            .collect();
        let mut pick = vec![0usize; options.len()];
        for _ in 0..256 {
            let stores: Vec<Reg> = pick.iter().zip(&options).map(|(&i, o)| o[i]).collect();
            if self.proves(&s.core, &stores) {
                return Some(stores);
            }
            // Next choice, odometer order.
            let mut k = 0;
            loop {
                if k == pick.len() {
                    return None;
                }
                pick[k] += 1;
                if pick[k] < options[k].len() {
                    break;
                }
                pick[k] = 0;
                k += 1;
            }
        }
        None
    }

    /// The whole program for a sequence of actions that ends in a solution: loads, core,
    /// stores. `None` if the actions are illegal or do not reach a solution.
    pub fn program(&self, actions: &[Action]) -> Option<Vec<Insn>> {
        let mut s = self.initial.clone();
        let mut prog = self.loads();
        for &a in actions {
            s = self.step(&s, a)?;
            prog.push(self.moves[a as usize]);
        }
        let regs = self.proven_stores(&s)?;
        prog.extend(self.stores(&regs));
        Some(prog)
    }

    /// Replays a whole program (loads and stores included) on the emulator and returns the
    /// final CPU state, or the first fault with its instruction index.
    pub fn run(&self, program: &[Insn]) -> Result<CpuState, (usize, Fault)> {
        let mut cpu = self.task.cpu_state(&self.tv);
        for (i, &insn) in program.iter().enumerate() {
            cpu.apply(insn).map_err(|f| (i, f))?;
        }
        Ok(cpu)
    }

    fn missing_targets(&self, s: &GameState) -> u32 {
        self.targets
            .iter()
            .filter(|col| {
                !self
                    .regs
                    .iter()
                    .any(|&r| s.cpu.reg_defined(r) && s.cpu.reg(r) == &col[..])
            })
            .count() as u32
    }

    /// Whether every test vector still holds each of its input values in some register.
    fn values_alive(&self, cpu: &CpuState) -> bool {
        if self.task.memory_operands {
            // The array holds every input until the stores (which come last), and loads and
            // memory operands read it: no value is ever lost.
            return true;
        }
        let t = cpu.num_vectors();
        let mut present = vec![0u8; t];
        for &r in &self.regs {
            if cpu.reg_defined(r) {
                for (p, &v) in present.iter_mut().zip(cpu.reg(r)) {
                    *p |= 1 << v;
                }
            }
        }
        present == self.value_sets
    }

    /// The distinct columns of the defined registers on the permutation test vectors.
    fn perm_columns(&self, cpu: &CpuState) -> Vec<Vec<u8>> {
        let mut cols: Vec<Vec<u8>> = Vec::with_capacity(8);
        for &r in &self.regs {
            if cpu.reg_defined(r) {
                let c = cpu.reg(r);
                let col: Vec<u8> = self.perms.iter().map(|&t| c[t]).collect();
                if !cols.contains(&col) {
                    cols.push(col);
                }
            }
        }
        cols
    }

    /// `cols` with the array's columns on the permutation test vectors added, in a task with
    /// memory operands (the slots hold their inputs until the stores, and loads and memory
    /// operands read them); `cols` itself otherwise.
    fn with_memory_columns(&self, cpu: &CpuState, mut cols: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        if self.task.memory_operands {
            for k in 0..self.tv.n {
                let c = cpu.mem(k);
                let col: Vec<u8> = self.perms.iter().map(|&t| c[t]).collect();
                if !cols.contains(&col) {
                    cols.push(col);
                }
            }
        }
        cols
    }

    /// Estimated instructions still needed, stores included (not admissible; guides the
    /// search). On the permutation test vectors, take any `n` registers that together hold
    /// every input value and the set `S` of orderings they show; finishing as a sorting network
    /// takes `C(S)` more comparators of 4 instructions each ([`network::Networks`]; `log2 |S|`
    /// for n > 5). The estimate uses the best such `n` registers. To credit a compare-exchange that is
    /// half done, the estimate also tries completing one comparator on any pair of columns
    /// `(P, Q)`: the instructions it still needs (a `cmp` unless the flags already order
    /// `P, Q`, a `mov` to save a copy, a `cmovcc` for each of `min(P,Q)`, `max(P,Q)` not yet
    /// held), plus the estimate after it.
    fn remaining_estimate(&self, s: &GameState) -> f32 {
        let cols = self.perm_columns(&s.cpu);
        let flags: Option<Vec<u8>> = s
            .cpu
            .flags_defined()
            .then(|| self.perms.iter().map(|&t| s.cpu.flags()[t]).collect());
        // With memory operands the array's slots count as columns: for n <= 4 always, past
        // that only while the registers cannot hold every value (the estimate tries every
        // choice of n columns for every pair, which more columns make too slow there). A
        // heuristic choice, measured: sort3-mem / sort4-mem / sort5-mem reach 15 / 26 / 41
        // in 30 s of A* with this rule; slots always counted give 15 / 26 / 46, slots counted
        // only while registers fall short give 16 / 27 / 41 (BENCHMARKS "Memory operands").
        let cols = if self.tv.n <= 4 || cols.len() < self.tv.n {
            self.with_memory_columns(&s.cpu, cols)
        } else {
            cols
        };
        let mut best = match self.comparators_left(&cols) {
            Some(b) => self.exchange_cost() as f32 * b,
            None => f32::INFINITY,
        };
        for i in 0..cols.len() {
            for j in i + 1..cols.len() {
                let (p, q) = (&cols[i], &cols[j]);
                let lo: Vec<u8> = p.iter().zip(q).map(|(&x, &y)| x.min(y)).collect();
                let hi: Vec<u8> = p.iter().zip(q).map(|(&x, &y)| x.max(y)).collect();
                if lo == *p || lo == *q {
                    continue; // already ordered: the comparator does nothing
                }
                let ordered = |f: &Vec<u8>| {
                    p.iter().zip(q).zip(f).all(|((&x, &y), &g)| {
                        let c = (x > y) as u8 + (x >= y) as u8;
                        c == g
                    }) || p.iter().zip(q).zip(f).all(|((&x, &y), &g)| {
                        let c = (x > y) as u8 + (x >= y) as u8;
                        c == 2 - g
                    })
                };
                let mut cost = 0.0;
                let vector = self.task.vector;
                if vector.is_none() && !flags.as_ref().is_some_and(ordered) {
                    cost += 1.0;
                }
                let has_lo = cols.contains(&lo);
                let has_hi = cols.contains(&hi);
                cost += f32::from(!has_lo as u8) + f32::from(!has_hi as u8);
                if !has_lo && !has_hi && !vector.is_some_and(|v| v.avx()) {
                    // A copy of P or Q must survive the first cmov (or the first two-operand
                    // minimum); a three-operand minimum writes a free register instead.
                    cost += 1.0;
                }
                if cost >= best {
                    continue;
                }
                let mut virt: Vec<Vec<u8>> = cols
                    .iter()
                    .filter(|c| *c != p && *c != q)
                    .cloned()
                    .collect();
                if !has_lo {
                    virt.push(lo);
                }
                if !has_hi {
                    virt.push(hi);
                }
                if let Some(b) = self.comparators_left(&virt) {
                    best = best.min(cost + self.exchange_cost() as f32 * b);
                }
            }
        }
        self.store_count() as f32 + best
    }
}

impl SortGame {
    /// Under latency: the earliest cycle at which any new value can be ready (a `cmovcc` one
    /// cycle after the earliest live register and the current flags, or two cycles after that
    /// register with a new `cmp` first), and for each slot the earliest its sorted column can
    /// be ready (held now, or new). Returns `(earliest new value, latest slot)`.
    fn slot_times(&self, s: &GameState) -> (u16, u16) {
        let live = self.regs.iter().filter(|&&r| s.cpu.reg_defined(r));
        let m = live.map(|&r| self.ready(&s.model, r)).min().unwrap_or(0);
        // A cmovcc on the current flags, or after a new cmp of the earliest registers; a lane
        // minimum or maximum one cycle after its sources.
        let fresh = if self.task.vector.is_some() {
            m + 1
        } else if s.cpu.flags_defined() {
            (s.model.flags_ready.max(m) + 1).min(m + 2)
        } else {
            m + 2
        };
        let latest = self
            .targets
            .iter()
            .map(|col| {
                self.regs
                    .iter()
                    .filter(|&&r| s.cpu.reg_defined(r) && s.cpu.reg(r) == &col[..])
                    .map(|&r| self.ready(&s.model, r))
                    .min()
                    .map_or(fresh, |held| held.min(fresh))
            })
            .max()
            .unwrap_or(0);
        (fresh, latest)
    }

    /// Under latency: a lower bound, in cycles, on the critical path of any completion of `s`:
    /// every slot's column must be ready (see [`SortGame::slot_times`]) and then stored (one
    /// cycle). Admissible: no instruction completes before its sources are ready.
    fn latency_bound(&self, s: &GameState) -> u16 {
        self.slot_times(s).1 + 1
    }

    /// Under latency: the estimated cost still to come from latency, given `len_estimate`
    /// instructions still to come. Each comparator left (4 instructions) is taken to add one
    /// layer of `cmp` + `cmovcc` (2 cycles) when `n / 2` comparators share a layer, starting
    /// from the earliest new value, then a cycle for the stores; never below
    /// [`SortGame::latency_bound`].
    fn latency_estimate(&self, s: &GameState, len_estimate: f32) -> f32 {
        let n = self.tv.n as f32;
        let stores = self.store_count() as f32;
        let comparators = ((len_estimate - stores) / self.exchange_cost() as f32).max(0.0);
        let layers = (comparators / (n / 2.0).floor().max(1.0)).ceil();
        let (fresh, latest) = self.slot_times(s);
        // A layer: cmp then cmovcc (2 cycles), a lane minimum and maximum side by side (1), or
        // in a packed task a shuffle, the minimum and maximum, and a blend (3).
        let per_layer = match self.task.vector {
            Some(_) if self.task.packed => 3.0,
            Some(_) => 1.0,
            None => 2.0,
        };
        let end = (fresh as f32 - 1.0 + per_layer * layers + 1.0).max(latest as f32 + 1.0);
        let t = crate::latency::model::TICKS_PER_CYCLE as f32;
        let now = s.model.ticks().0 as f32;
        LATENCY_WEIGHT as f32 * (end * t - now).max(0.0)
    }

    /// Under latency, the part of the transposition key beyond the CPU state: each defined
    /// register's column paired with its ready time (sorted, so renaming registers does not
    /// change it), the flags' ready time, the latest completion, the instruction count, the
    /// pipe counts and the pipes taken in each cycle.
    fn timing_key(&self, s: &GameState) -> u64 {
        let m = &s.model;
        let mut regs: Vec<u64> = self
            .regs
            .iter()
            .filter(|&&r| s.cpu.reg_defined(r))
            .map(|&r| mix64(hash_bytes(3, s.cpu.reg(r)) ^ self.ready(m, r) as u64))
            .collect();
        regs.sort_unstable();
        let mut h = mix64(
            m.flags_ready as u64
                | (m.end as u64) << 16
                | (m.alu as u64) << 32
                | (m.cmov as u64) << 48,
        );
        h = mix64(h ^ m.count as u64 ^ (m.pipe_hash() << 16));
        for r in regs {
            h = mix64(h ^ r);
        }
        h
    }
}

/// `program` without the instructions whose results are never used: a write to a register
/// that is overwritten or never read before the end (stores read), a `cmp` whose flags no
/// `cmovcc` reads. Backward liveness over registers and flags; removing such an instruction
/// leaves every output unchanged and never delays another instruction in the latency model.
/// The latency objective needs it: a `mov` costs no model time, so its searches leave some.
pub fn without_dead_code(program: &[Insn]) -> Vec<Insn> {
    let bit = |r: Reg| 1u16 << r as u8;
    let (mut live, mut flags) = (0u16, false);
    let mut keep = vec![false; program.len()];
    for (i, &insn) in program.iter().enumerate().rev() {
        keep[i] = match insn {
            Insn::Store { src, .. } => {
                live |= bit(src);
                true
            }
            Insn::Load { dst, .. } => {
                live & bit(dst) != 0 && {
                    live &= !bit(dst);
                    true
                }
            }
            Insn::Mov { dst, src } => {
                live & bit(dst) != 0 && {
                    live = live & !bit(dst) | bit(src);
                    true
                }
            }
            Insn::Cmov { dst, src, .. } => {
                live & bit(dst) != 0 && {
                    live |= bit(src);
                    flags = true;
                    true
                }
            }
            Insn::Cmp { a, b } => {
                flags && {
                    flags = false;
                    live |= bit(a) | bit(b);
                    true
                }
            }
            Insn::CmpMem { a, .. } => {
                flags && {
                    flags = false;
                    live |= bit(a);
                    true
                }
            }
            Insn::CmovMem { dst, .. } => {
                live & bit(dst) != 0 && {
                    flags = true;
                    true
                }
            }
            Insn::VStore { src, .. } | Insn::PStore { src } => {
                live |= bit(src);
                true
            }
            // Every vector write replaces the whole register (VEX zeroes the rest).
            Insn::VLoad { dst, .. }
            | Insn::VMov { dst, .. }
            | Insn::Min { dst, .. }
            | Insn::Max { dst, .. }
            | Insn::PLoad { dst }
            | Insn::Shuf { dst, .. }
            | Insn::Blend { dst, .. } => {
                live & bit(dst) != 0 && {
                    live &= !bit(dst);
                    for r in insn.read_regs() {
                        live |= bit(r);
                    }
                    true
                }
            }
        };
    }
    program
        .iter()
        .zip(keep)
        .filter_map(|(&i, k)| k.then_some(i))
        .collect()
}

/// `mov scratch[k], [rdi + 4k]` for every slot `k`; in a vector task the `movd` (`vmovd`)
/// into `xmm{scratch[k]}`; in a packed task the one `vmovdqu xmm{scratch[0]}, [rdi]`.
fn load_moves(task: &Task, n: usize) -> Vec<Insn> {
    let (scratch, vector) = (&task.scratch, task.vector.map(|v| v.avx()));
    if task.packed {
        return vec![Insn::PLoad { dst: scratch[0] }];
    }
    if task.memory_operands {
        // Loads are moves of the core: a value may be read from the array where it is used.
        return Vec::new();
    }
    (0..n)
        .map(|k| {
            let (dst, slot) = (scratch[k], k as u8);
            match vector {
                None => Insn::Load { dst, slot },
                Some(avx) => Insn::VLoad { dst, slot, avx },
            }
        })
        .collect()
}

/// The moves a task with memory operands adds to the scalar table: the loads `mov d,
/// [rdi+4k]` (in the core: loads may come anywhere), `cmp a, [rdi+4k]` (the mirrored `cmp
/// [rdi+4k], a` is left out, as `cmp b, a` is: its conditions are the mirrored ones, also
/// moves) and `cmovcc d, [rdi+4k]`.
fn memory_moves(regs: &[Reg], conds: &[crate::isa::Cond], n: usize) -> Vec<Insn> {
    let slots = || 0..n as u8;
    let mut moves = Vec::new();
    for &dst in regs {
        moves.extend(slots().map(|slot| Insn::Load { dst, slot }));
    }
    for &a in regs {
        moves.extend(slots().map(|slot| Insn::CmpMem {
            a,
            slot,
            mem_first: false,
        }));
    }
    for &cc in conds {
        for &dst in regs {
            moves.extend(slots().map(|slot| Insn::CmovMem { cc, dst, slot }));
        }
    }
    moves
}

/// The scalar move table: `mov d, s`, `cmp a, b` (a before b in `regs`), `cmovcc d, s`.
fn scalar_moves(regs: &[Reg], conds: &[crate::isa::Cond]) -> Vec<Insn> {
    let mut moves = Vec::new();
    for &d in regs {
        for &s in regs {
            if d != s {
                moves.push(Insn::Mov { dst: d, src: s });
            }
        }
    }
    for (i, &a) in regs.iter().enumerate() {
        for &b in &regs[i + 1..] {
            moves.push(Insn::Cmp { a, b });
        }
    }
    for &cc in conds {
        for &d in regs {
            for &s in regs {
                if d != s {
                    moves.push(Insn::Cmov { cc, dst: d, src: s });
                }
            }
        }
    }
    moves
}

/// The vector move table: `movdqa d, s` when `copies`; with `avx` the three-operand minimum
/// and maximum of `a`, `b` (a before b in `regs`: both commute) into any `d`; without, the
/// two-operand `pminsd d, s` and `pmaxsd d, s` (`d = min(d, s)`) for every `d != s`.
fn vector_moves(regs: &[Reg], avx: bool, copies: bool) -> Vec<Insn> {
    let mut moves = Vec::new();
    if copies {
        for &d in regs {
            for &s in regs {
                if d != s {
                    moves.push(Insn::VMov {
                        dst: d,
                        src: s,
                        avx,
                    });
                }
            }
        }
    }
    for min in [true, false] {
        let op = |dst, a, b| {
            if min {
                Insn::Min { dst, a, b, avx }
            } else {
                Insn::Max { dst, a, b, avx }
            }
        };
        if avx {
            for (i, &a) in regs.iter().enumerate() {
                for &b in &regs[i + 1..] {
                    for &d in regs {
                        moves.push(op(d, a, b));
                    }
                }
            }
        } else {
            for &d in regs {
                for &s in regs {
                    if d != s {
                        moves.push(op(d, d, s));
                    }
                }
            }
        }
    }
    moves
}

/// The packed move table over xmm registers `regs`: `vpshufd d, s, imm` for every `d`, `s`
/// and immediate but the identity copy onto itself; `vpblendd d, a, b, imm` for `a != b` and
/// the 14 immediates that take lanes from both; `vpminsd` / `vpmaxsd d, a, b` with `a` before
/// `b` in `regs` (both commute). 2,550 moves over three registers.
fn packed_moves(regs: &[Reg]) -> Vec<Insn> {
    let mut moves = Vec::new();
    for &dst in regs {
        for &src in regs {
            for imm in 0..=255u8 {
                if !(dst == src && imm == 0b11_10_01_00) {
                    moves.push(Insn::Shuf { dst, src, imm });
                }
            }
        }
    }
    for &dst in regs {
        for &a in regs {
            for &b in regs {
                if a != b {
                    for imm in 1..15u8 {
                        moves.push(Insn::Blend { dst, a, b, imm });
                    }
                }
            }
        }
    }
    for min in [true, false] {
        for (i, &a) in regs.iter().enumerate() {
            for &b in &regs[i + 1..] {
                for &dst in regs {
                    moves.push(min_max_move(min, dst, a, b));
                }
            }
        }
    }
    moves
}

fn min_max_move(min: bool, dst: Reg, a: Reg, b: Reg) -> Insn {
    if min {
        Insn::Min {
            dst,
            a,
            b,
            avx: true,
        }
    } else {
        Insn::Max {
            dst,
            a,
            b,
            avx: true,
        }
    }
}

impl SortGame {
    /// `len` (instructions still to come, a lower bound) as a cost bound: under latency, plus
    /// the cycles [`SortGame::latency_bound`] says are still to come.
    fn bound_with_latency(&self, s: &GameState, len: u32) -> u32 {
        match self.objective {
            Objective::Length => len,
            Objective::Latency => {
                let t = crate::latency::model::TICKS_PER_CYCLE;
                let now = s.model.ticks().0;
                len + LATENCY_WEIGHT * (t * self.latency_bound(s) as u32).saturating_sub(now)
            }
        }
    }

    /// The legal moves of a packed task (see the module docs, "Packed lanes"): each source
    /// has a defined lane, a minimum or maximum has a lane defined in both sources, and a
    /// register none of whose lanes is defined is written only if it is the lowest such.
    fn packed_legal_actions(&self, s: &GameState, out: &mut Vec<Action>) {
        let lanes = |r: Reg| s.cpu.lanes_defined(r);
        let lowest_free = self.task.scratch.iter().copied().find(|&r| lanes(r) == 0);
        let dst_ok = |d: Reg| lanes(d) != 0 || Some(d) == lowest_free;
        for (i, &m) in self.moves.iter().enumerate() {
            let ok = match m {
                Insn::Shuf { dst, src, .. } => lanes(src) != 0 && dst_ok(dst),
                Insn::Blend { dst, a, b, .. } => lanes(a) != 0 && lanes(b) != 0 && dst_ok(dst),
                Insn::Min { dst, a, b, .. } | Insn::Max { dst, a, b, .. } => {
                    lanes(a) & lanes(b) != 0 && dst_ok(dst)
                }
                _ => false,
            };
            if ok {
                out.push(i as Action);
            }
        }
    }

    /// Whether a packed move from `s` to `next` is worth playing: `Some(())` unless it leaves
    /// no lane of its destination defined, changes no defined lane of it, or loses an input
    /// value on some test vector.
    fn packed_step_ok(&self, s: &GameState, next: &GameState, m: Insn) -> Option<()> {
        let dst = m.written_reg()?;
        let (old, new) = (s.cpu.lanes_defined(dst), next.cpu.lanes_defined(dst));
        if new == 0 {
            return None; // a register of no input value: nothing can use it
        }
        let lane = |c: &CpuState, l: usize| c.column(cpu::LANES * dst.index() + l).to_vec();
        if old == new
            && (0..cpu::LANES).all(|l| new >> l & 1 == 0 || lane(&s.cpu, l) == lane(&next.cpu, l))
        {
            return None; // changes nothing
        }
        if old != 0 && !self.values_alive(&next.cpu) {
            return None;
        }
        Some(())
    }

    /// The transposition key of a packed state: per register with a defined lane, its lanes in
    /// order (an undefined lane as a marker), the registers sorted (renaming them changes
    /// nothing), and the timing part under latency. Lanes are not sorted: their order matters
    /// to every later shuffle, blend and store.
    fn packed_key(&self, s: &GameState) -> u64 {
        let mut regs: Vec<u64> = self
            .task
            .scratch
            .iter()
            .filter(|&&r| s.cpu.lanes_defined(r) != 0)
            .map(|&r| {
                (0..cpu::LANES).fold(0u64, |h, l| {
                    let c = cpu::LANES * r.index() + l;
                    let lane = if s.cpu.col_defined(c) {
                        hash_bytes(1, s.cpu.column(c))
                    } else {
                        0x5eed
                    };
                    mix64(h ^ lane)
                })
            })
            .collect();
        regs.sort_unstable();
        let mut h = 0u64;
        for r in regs {
            h = mix64(h ^ r);
        }
        if self.objective == Objective::Latency {
            h = mix64(h ^ self.timing_key(s));
        }
        h
    }

    /// Comparators left to sort the best `n` of `cols` (columns on the permutation test
    /// vectors) that hold all `n` values on every row; `None` when no `n` columns do.
    fn comparators_left(&self, cols: &[Vec<u8>]) -> Option<f32> {
        let n = self.tv.n;
        let m = cols.len();
        if m < n {
            return None;
        }
        let rows = cols[0].len();
        let full = ((1u16 << n) - 1) as u8;
        let mut best: Option<f32> = None;
        let mut keys: Vec<u32> = Vec::with_capacity(rows);
        let mut idx: Vec<usize> = (0..n).collect();
        loop {
            keys.clear();
            let mut covers = true;
            // Column-major data: `t` indexes a row across several columns.
            #[allow(clippy::needless_range_loop)]
            if let Some(zo) = &self.zero_one {
                // 0-1 rows: the chosen registers must hold as many ones as the input; on
                // the permutation rows after them, every value.
                let mut set = [0u64; 4];
                #[allow(clippy::needless_range_loop)]
                for t in 0..rows {
                    if t >= self.weights.len() {
                        let seen = idx.iter().fold(0u8, |m, &i| m | 1 << cols[i][t]);
                        if seen != full {
                            covers = false;
                            break;
                        }
                        continue;
                    }
                    let mut code = 0u32;
                    let mut ones = 0u8;
                    for (k, &i) in idx.iter().enumerate() {
                        let v = cols[i][t];
                        ones += v;
                        code |= u32::from(v) << k;
                    }
                    if ones != self.weights[t] {
                        covers = false;
                        break;
                    }
                    set[(code / 64) as usize] |= 1 << (code % 64);
                }
                if covers {
                    let c = zo.comparators(&set) as f32;
                    best = Some(best.map_or(c, |b: f32| b.min(c)));
                }
            } else {
                for t in 0..rows {
                    let mut seen = 0u8;
                    let mut key = 0u32;
                    for &i in &idx {
                        let v = cols[i][t];
                        seen |= 1 << v;
                        key = key << 3 | v as u32;
                    }
                    if seen != full {
                        covers = false;
                        break;
                    }
                    keys.push(key);
                }
                if covers {
                    let c = match &self.networks {
                        Some(net) => {
                            let set = keys.iter().fold(0u128, |s, &k| {
                                s | 1u128 << net.index(k).expect("a covering row is a permutation")
                            });
                            net.min_comparators(set) as f32
                        }
                        None => {
                            keys.sort_unstable();
                            keys.dedup();
                            (keys.len() as f32).log2()
                        }
                    };
                    best = Some(best.map_or(c, |b: f32| b.min(c)));
                }
            }
            let mut i = n;
            loop {
                if i == 0 {
                    return best;
                }
                i -= 1;
                if idx[i] < m - n + i {
                    idx[i] += 1;
                    for j in i + 1..n {
                        idx[j] = idx[j - 1] + 1;
                    }
                    break;
                }
            }
        }
    }
}

impl Environment for SortGame {
    type State = GameState;

    fn initial(&self) -> GameState {
        self.initial.clone()
    }

    fn num_actions(&self) -> usize {
        self.moves.len()
    }

    fn legal_actions(&self, s: &GameState, out: &mut Vec<Action>) {
        if self.task.packed {
            return self.packed_legal_actions(s, out);
        }
        let lowest_free = self
            .task
            .scratch
            .iter()
            .copied()
            .find(|&r| !s.cpu.reg_defined(r));
        for (i, &m) in self.moves.iter().enumerate() {
            let ok = match m {
                Insn::Mov { dst, src } => {
                    s.cpu.reg_defined(src) && (s.cpu.reg_defined(dst) || Some(dst) == lowest_free)
                }
                Insn::Cmp { a, b } => !s.last_cmp && s.cpu.reg_defined(a) && s.cpu.reg_defined(b),
                Insn::Cmov { dst, src, .. } => {
                    s.cpu.flags_defined() && s.cpu.reg_defined(dst) && s.cpu.reg_defined(src)
                }
                // Memory-operand tasks: loads into a defined register or the lowest free one.
                Insn::Load { dst, .. } if self.task.memory_operands => {
                    s.cpu.reg_defined(dst) || Some(dst) == lowest_free
                }
                Insn::CmpMem { a, .. } => !s.last_cmp && s.cpu.reg_defined(a),
                Insn::CmovMem { dst, .. } => s.cpu.flags_defined() && s.cpu.reg_defined(dst),
                Insn::VMov { dst, src, .. } => {
                    s.cpu.reg_defined(src) && (s.cpu.reg_defined(dst) || Some(dst) == lowest_free)
                }
                Insn::Min { dst, .. } | Insn::Max { dst, .. } => {
                    m.read_regs().iter().all(|&r| s.cpu.reg_defined(r))
                        && (s.cpu.reg_defined(dst) || Some(dst) == lowest_free)
                }
                Insn::Load { .. }
                | Insn::Store { .. }
                | Insn::VLoad { .. }
                | Insn::VStore { .. }
                | Insn::PLoad { .. }
                | Insn::PStore { .. }
                | Insn::Shuf { .. }
                | Insn::Blend { .. } => false,
            };
            if ok {
                out.push(i as Action);
            }
        }
    }

    fn step(&self, s: &GameState, a: Action) -> Option<GameState> {
        let m = self.moves[a as usize];
        let mut next = s.clone();
        next.cpu.apply(m).ok()?;
        match m {
            _ if self.task.packed => self.packed_step_ok(s, &next, m)?,
            Insn::Mov { dst, .. }
            | Insn::Cmov { dst, .. }
            | Insn::CmovMem { dst, .. }
            | Insn::VMov { dst, .. }
            | Insn::Min { dst, .. }
            | Insn::Max { dst, .. } => {
                if s.cpu.reg_defined(dst) {
                    if next.cpu.reg(dst) == s.cpu.reg(dst) {
                        return None; // changes nothing
                    }
                    if !self.values_alive(&next.cpu) {
                        return None; // a value is lost on some test vector
                    }
                }
            }
            // A load is a move of the core in memory-operand tasks only.
            Insn::Load { dst, .. } if self.task.memory_operands => {
                if s.cpu.reg_defined(dst) && next.cpu.reg(dst) == s.cpu.reg(dst) {
                    return None; // changes nothing
                }
            }
            Insn::Cmp { .. } | Insn::CmpMem { .. } => {
                let (old, new) = (s.cpu.flags(), next.cpu.flags());
                if new.iter().all(|&f| f == FLAG_EQ) {
                    return None;
                }
                if s.cpu.flags_defined()
                    && (new == old || new.iter().zip(old).all(|(&x, &y)| x == 2 - y))
                {
                    return None;
                }
            }
            Insn::Load { .. }
            | Insn::Store { .. }
            | Insn::VLoad { .. }
            | Insn::VStore { .. }
            | Insn::PLoad { .. }
            | Insn::PStore { .. }
            | Insn::Shuf { .. }
            | Insn::Blend { .. } => return None,
        }
        next.len += 1;
        if self.objective == Objective::Latency {
            // Only latency costs read it; length searches skip the scheduling.
            next.model.push(&Op::of_insn(m));
        }
        next.last_cmp = matches!(m, Insn::Cmp { .. } | Insn::CmpMem { .. });
        if self.proof.is_some() {
            next.core.push(m);
        }
        next.recent.rotate_right(1);
        next.recent[0] = Some(m);
        Some(next)
    }

    fn cost(&self, s: &GameState) -> u32 {
        self.cost_of(&s.model, s.len)
    }

    fn solution_cost(&self, s: &GameState) -> Option<u32> {
        if self.missing_targets(s) != 0 {
            return None;
        }
        let stores = self.proven_stores(s)?;
        let len = s.len + self.store_count() as u32;
        Some(match self.objective {
            Objective::Length => len,
            Objective::Latency => {
                let mut m = s.model;
                for store in self.stores(&stores) {
                    m.push(&Op::of_insn(store));
                }
                self.cost_of(&m, len)
            }
        })
    }

    fn lower_bound(&self, s: &GameState) -> u32 {
        if self.task.packed {
            // The store, and a move first unless some register holds the sorted lanes.
            let len = 1 + u32::from(self.store_regs(s).is_none());
            return self.bound_with_latency(s, len);
        }
        let missing = self.missing_targets(s);
        // A scalar task also needs a cmp before its first cmovcc.
        let cmp = u32::from(missing > 0 && !s.cpu.flags_defined() && self.task.vector.is_none());
        let len = self.tv.n as u32 + missing + cmp;
        self.bound_with_latency(s, len)
    }

    fn estimate(&self, s: &GameState) -> f32 {
        let lb = self.lower_bound(s) as f32;
        let e = self.remaining_estimate(s);
        let len = if e.is_finite() {
            e.max(lb)
        } else {
            // No n registers hold the values as the inputs do (a half-done exchange, say).
            // On every weak ordering: as far as log2 of the orderings (unchanged since the
            // sort3-5 benchmarks); on the 0-1 vectors, as far as a whole network.
            if self.is_exact() {
                lb + self.exchange_cost() as f32 * (self.perms.len() as f32).log2()
            } else {
                let n = self.tv.n;
                let comparators =
                    network::classic_comparators(n).map_or(n * (n - 1) / 2, |c| c.len());
                lb + self.exchange_cost() as f32 * comparators as f32
            }
        };
        match self.objective {
            Objective::Length => len,
            Objective::Latency => len + self.latency_estimate(s, len),
        }
    }

    fn describe(&self, a: Action) -> String {
        self.moves[a as usize].intel_as(self.task.element)
    }

    fn max_cost(&self) -> u32 {
        // Twice the network's length: far beyond any kernel worth finding; bounds episodes.
        self.value_scale() as u32
    }

    fn key(&self, s: &GameState) -> u64 {
        if self.task.packed {
            return self.packed_key(s);
        }
        let mut cols: Vec<u64> = self
            .regs
            .iter()
            .filter(|&&r| s.cpu.reg_defined(r))
            .map(|&r| hash_bytes(1, s.cpu.reg(r)))
            .collect();
        cols.sort_unstable();
        let mut h = 0u64;
        for c in cols {
            h = mix64(h ^ c);
        }
        if s.cpu.flags_defined() {
            let f = s.cpu.flags();
            let mirrored: Vec<u8> = f.iter().map(|&x| 2 - x).collect();
            h = mix64(h ^ hash_bytes(2, f).min(hash_bytes(2, &mirrored)));
        }
        if self.objective == Objective::Latency {
            h = mix64(h ^ self.timing_key(s));
        }
        h ^ u64::from(s.last_cmp)
    }

    fn value_scale(&self) -> f32 {
        // Twice a sorting network we can always build, whatever the task file claims: the
        // optimal-size network for n <= 5, else the n(n-1)/2 comparators of odd-even
        // transposition sort; 4 instructions per comparator plus 2n. Under latency, twice
        // that network's cost: its latency (in the model, at most one cycle per instruction
        // after the 4-cycle loads) and its length.
        let n = self.tv.n;
        let comparators = network::classic_comparators(n).map_or(n * (n - 1) / 2, |c| c.len());
        let len = if self.task.packed {
            4 * comparators + 2
        } else {
            self.exchange_cost() as usize * comparators + 2 * n
        };
        // The loads' latency: 4 cycles into general-purpose registers, 7 into vector ones.
        let load = if self.task.vector.is_some() { 7 } else { 4 };
        match self.objective {
            Objective::Length => 2.0 * len as f32,
            Objective::Latency => {
                let ticks = crate::latency::model::TICKS_PER_CYCLE as usize * (len + load);
                2.0 * (LATENCY_WEIGHT as usize * ticks + len) as f32
            }
        }
    }
}

/// Whether `cpu` (after a whole program) holds the sorted inputs in memory on every test
/// vector; if not, the first test vector (index) where it does not.
pub fn check_sorted(tv: &TestVectors, cpu: &CpuState) -> Result<(), usize> {
    for t in 0..tv.len() {
        for k in 0..tv.n {
            if cpu.mem(k)[t] != tv.sorted[t][k] {
                return Err(t);
            }
        }
    }
    Ok(())
}
