//! Policy/value network for the sort game (candle), implementing [`Evaluator`].
//!
//! ## Architecture (after AlphaDev, Nature 618:257, 2023, Methods, "Representation network")
//! One net can serve every sort task with `n <= n_max` over this crate's ISA: nothing in it is
//! sized by a task's `n` or move table, so a net trained on sort3 and sort4 can guide sort5.
//!
//! * **CPU-state encoder.** For every test vector, [`TV_FEATURES`] features that do not depend
//!   on the concrete values: per scratch register, whether it is defined, the one-hot rank of
//!   its value among the inputs (test vectors hold ranks) and the one-hot of the first sorted
//!   slot that value belongs in; for every pair of registers, the one-hot of `<`, `=`, `>`
//!   between them; the one-hot flags. A two-layer MLP embeds each test vector and the
//!   embeddings are mean-pooled over test vectors, as AlphaDev pools its per-input encodings.
//!   Cost: `T x (F x H + H x H)` multiply-adds for `T` test vectors (sort3: 13 x (208 x 64 +
//!   64 x 64), 0.23M; sort5: 541 x ..., 9.4M).
//! * **Program encoder.** Each instruction is embedded from its opcode and operands
//!   ([`insn_features`]: kind, condition, destination and source as one-hots over registers
//!   and array slots). The game is Markov in the CPU state, so the encoder reads a window of
//!   the last [`RECENT`] instructions (which says, for instance, which `cmp` set the flags)
//!   plus the program's length and the task's `n`, through one linear layer: `164 x H`
//!   multiply-adds, negligible next to the state encoder. AlphaDev's transformer over the
//!   whole program would cost `L x` more and add nothing the CPU state does not hold.
//! * **Heads.** The policy scores each legal move as a pointer network would: `w .
//!   relu(A z + B m) + c` for the joined embedding `z` and the move's features `m`
//!   ([`MOVE_FEATURES`]), so the policy is defined for any move table (cost `|legal| x H`
//!   after one `B m` per move). `m` is the instruction's features plus one look-ahead
//!   feature: how much the game's estimate of the total length changes if the move is played
//!   (the same one-step look-ahead the heuristic evaluator turns into priors; it costs one
//!   emulator step and one estimate per legal move). So the net starts from the heuristic's
//!   information and learns, per state, how to weigh it against what the search found;
//!   AlphaDev's network had no such hand-designed input. Two value heads, correctness and
//!   length, are each a sigmoid scaled to `[0, 0.5]` and summed as in AlphaDev, so the value
//!   lies in `[0, 1]` like [`crate::search::value_of`].
//!
//! A checkpoint records the instruction vocabulary it was built for ([`vocabulary_hash`]) and
//! the largest `n` it was trained for; loading it for a task outside either is refused.

pub mod train;

use crate::error::{Error, Result};
use crate::game::{GameState, SortGame, RECENT};
use crate::isa::{Cond, Insn, Reg, NUM_CALLER_SAVED as NUM_REGS};
use crate::search::{Action, Environment, Evaluation, Evaluator};
/// Largest `n` the net's features describe (7, as when the shipped nets were trained; tasks
/// past it, and tasks with callee-saved scratch registers, are searched without a net).
pub const MAX_N: usize = 7;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the checkpoint metadata format.
pub const NET_VERSION: u32 = 2;

/// Name of the architecture written into checkpoints; a checkpoint of another architecture is
/// refused.
pub const ARCH: &str = "tv-mlp-meanpool+window4+pointer-policy";

/// Locations an instruction operand can name: the scratch registers, then the array slots.
const LOCATIONS: usize = NUM_REGS + MAX_N;

/// Features of one instruction ([`insn_features`]): kind (5), condition (4), destination and
/// source locations (one-hot each).
pub const INSN_FEATURES: usize = 5 + 4 + 2 * LOCATIONS;

/// Per-test-vector features of a CPU state: per register 1 + 2 `MAX_N`, per register pair 3,
/// flags 4.
pub const TV_FEATURES: usize = NUM_REGS * (1 + 2 * MAX_N) + 3 * NUM_REGS * (NUM_REGS - 1) / 2 + 4;

/// Features of a move in a state for the policy head: [`insn_features`] plus the look-ahead
/// feature (see [`PolicyValueNet`]).
pub const MOVE_FEATURES: usize = INSN_FEATURES + 1;

/// Program features: [`RECENT`] instructions, the scaled length and the one-hot `n`.
pub const PROGRAM_FEATURES: usize = RECENT * INSN_FEATURES + 1 + MAX_N;

/// The features of one instruction, [`INSN_FEATURES`] long: one-hot kind (load, store, mov,
/// cmp, cmov), one-hot condition (cmov only), one-hot destination and source among the
/// registers and array slots (for `cmp a, b`, `a` is the destination).
pub fn insn_features(insn: Insn) -> [f32; INSN_FEATURES] {
    let mut f = [0f32; INSN_FEATURES];
    let reg = |r: Reg| r.index();
    let slot = |s: u8| NUM_REGS + s as usize;
    let (kind, cond, dst, src) = match insn {
        Insn::Load { dst, slot: s } => (0, None, reg(dst), slot(s)),
        Insn::Store { slot: s, src } => (1, None, slot(s), reg(src)),
        Insn::Mov { dst, src } => (2, None, reg(dst), reg(src)),
        Insn::Cmp { a, b } => (3, None, reg(a), reg(b)),
        Insn::Cmov { cc, dst, src } => (4, Some(cc), reg(dst), reg(src)),
        // Memory operands (not yet moves of the game): the slot as the second operand.
        Insn::CmpMem { a, slot: s, .. } => (3, None, reg(a), slot(s)),
        Insn::CmovMem { cc, dst, slot: s } => (4, Some(cc), reg(dst), slot(s)),
        // The net serves the scalar game only ([`PolicyValueNet::check_task`] refuses vector
        // tasks); a vector move that reaches it (as a program encoder input) reads as the
        // scalar move of the same shape, a minimum or maximum as a cmov of its second source.
        Insn::VLoad { dst, slot: s, .. } => (0, None, reg(dst), slot(s)),
        Insn::VStore { slot: s, src, .. } => (1, None, slot(s), reg(src)),
        Insn::VMov { dst, src, .. } => (2, None, reg(dst), reg(src)),
        Insn::Min { dst, b, .. } => (4, Some(Cond::G), reg(dst), reg(b)),
        Insn::Max { dst, b, .. } => (4, Some(Cond::L), reg(dst), reg(b)),
        // Packed moves likewise: a whole-array load or store as the slot-0 one, a shuffle as a
        // copy, a blend as a cmov from its second source.
        Insn::PLoad { dst } => (0, None, reg(dst), slot(0)),
        Insn::PStore { src } => (1, None, slot(0), reg(src)),
        Insn::Shuf { dst, src, .. } => (2, None, reg(dst), reg(src)),
        Insn::Blend { dst, b, .. } => (4, Some(Cond::Le), reg(dst), reg(b)),
    };
    f[kind] = 1.0;
    if let Some(cc) = cond {
        // The net reads a condition in the element's order: unsigned `b` is signed `l`.
        f[5 + cc.as_signed() as usize] = 1.0;
    }
    f[9 + dst] = 1.0;
    f[9 + LOCATIONS + src] = 1.0;
    f
}

/// Hash of the instruction vocabulary the features describe (every instruction over all
/// registers, conditions and `MAX_N` slots, in feature order) and of [`ARCH`]: a checkpoint
/// means something only for the vocabulary it was trained on.
pub fn vocabulary_hash() -> String {
    let mut text = vec![ARCH.to_string(), format!("max_n={MAX_N} recent={RECENT}")];
    for r in Reg::CALLER_SAVED {
        text.push(r.name().to_string());
    }
    for c in Cond::SIGNED {
        text.push(c.suffix().to_string());
    }
    format!(
        "{:016x}",
        crate::search::hash_bytes(7, text.join("\n").as_bytes())
    )
}

/// Where a net's tensors live and its arithmetic runs (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU (candle's CPU backend): always available.
    #[default]
    Cpu,
    /// NVIDIA GPU 0 through candle's CUDA backend: only in a build with the `cuda` feature
    /// (`cargo build --release --features cuda`, which needs the CUDA toolkit).
    Cuda,
}

impl DeviceKind {
    /// The candle device.
    ///
    /// Errors: [`Error::Runtime`] for `cuda` in a build without the `cuda` feature (`--device
    /// cuda: this superopt was built without CUDA; ...`), or when GPU 0 cannot be opened.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda if !cfg!(feature = "cuda") => Err(Error::Runtime(
                "--device cuda: this superopt was built without CUDA; rebuild it with `cargo build --release --features cuda` on a machine with the CUDA toolkit".into(),
            )),
            DeviceKind::Cuda => Device::new_cuda(0).map_err(|e| {
                Error::Runtime(format!("--device cuda: cannot open GPU 0: {}", first_line(&e)))
            }),
        }
    }
}

/// How a net-guided search values a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueSource {
    /// The game's estimate of the remaining length, as the network-free evaluators do; the
    /// net supplies the priors only. The default: see BENCHMARKS.md for the comparison.
    #[default]
    Estimate,
    /// The net's value heads (AlphaDev's choice).
    Net,
}

/// How a checkpoint did when it was written: a search guided by it on one task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetEvaluation {
    /// The task searched.
    pub task: String,
    /// The length searched for (instructions).
    pub target: u32,
    /// Best length reached (instructions), 0 if none.
    pub best: u32,
    /// Programs explored until `target` was reached, or in all if it was not.
    pub programs: u64,
    /// Seconds the search ran.
    pub seconds: f64,
}

/// Checkpoint metadata, stored as JSON beside the safetensors weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetMeta {
    /// [`NET_VERSION`].
    pub version: u32,
    /// [`ARCH`].
    pub arch: String,
    /// [`vocabulary_hash`] of the instruction vocabulary.
    pub moves_hash: String,
    /// Tasks the net was trained on.
    pub tasks: Vec<String>,
    /// Largest array length the net serves (slots beyond it were never trained).
    pub n_max: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Learner steps so far.
    pub steps: u64,
    /// Samples seen so far.
    pub samples: u64,
    /// Seconds of training so far.
    pub trained_s: f64,
    /// When the checkpoint was written (RFC 3339, UTC).
    pub date: String,
    /// Searches run with the checkpoint when it was written.
    pub evaluation: Vec<NetEvaluation>,
}

/// The policy/value network.
pub struct PolicyValueNet {
    meta: NetMeta,
    varmap: VarMap,
    tv1: Linear,
    tv2: Linear,
    program: Linear,
    trunk: Linear,
    policy_state: Linear,
    policy_move: Linear,
    policy_out: Linear,
    correct: Linear,
    length: Linear,
    device: Device,
    /// Where [`Evaluator::evaluate`] takes leaf values from.
    pub value_source: ValueSource,
}

/// Output of a forward pass on a batch of `B` states with their legal actions.
pub struct NetOutput {
    /// Policy logits of every state's legal actions, concatenated in order: shape `[P]` for
    /// `P` actions in all.
    pub logits: Tensor,
    /// Values in `[0, 1]`, shape `[B]`.
    pub values: Tensor,
}

impl PolicyValueNet {
    /// A freshly initialised net of hidden width `hidden` serving tasks with up to `n_max`
    /// elements (at most `MAX_N`), recording `tasks` as its training tasks; equal seeds give
    /// equal weights (weights uniform in `±1/sqrt(fan_in)`, biases zero).
    ///
    /// Errors: `n_max` outside `2..=MAX_N`.
    pub fn new(tasks: &[&str], n_max: usize, hidden: usize, seed: u64) -> Result<PolicyValueNet> {
        if !(2..=MAX_N).contains(&n_max) {
            return Err(Error::Runtime(format!(
                "n_max {n_max} is out of range (2..={MAX_N})"
            )));
        }
        let meta = NetMeta {
            version: NET_VERSION,
            arch: ARCH.to_string(),
            moves_hash: vocabulary_hash(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            n_max,
            hidden,
            steps: 0,
            samples: 0,
            trained_s: 0.0,
            date: String::new(),
            evaluation: Vec::new(),
        };
        let net = Self::build(meta, VarMap::new())?;
        net.reinitialise(seed)?;
        Ok(net)
    }

    /// Overwrites every variable from a ChaCha stream seeded with `seed`, in name order.
    fn reinitialise(&self, seed: u64) -> Result<()> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = self
            .varmap
            .data()
            .lock()
            .expect("the var map lock is never poisoned");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let values: Vec<f32> = if dims.len() == 2 {
                let bound = 1.0 / (dims[1] as f32).sqrt();
                (0..dims[0] * dims[1])
                    .map(|_| rng.gen_range(-bound..bound))
                    .collect()
            } else {
                vec![0.0; dims.iter().product()]
            };
            let t = Tensor::from_vec(values, dims.as_slice(), &self.device).map_err(candle_err)?;
            var.set(&t).map_err(candle_err)?;
        }
        Ok(())
    }

    fn build(meta: NetMeta, varmap: VarMap) -> Result<PolicyValueNet> {
        Self::build_on(meta, varmap, &Device::Cpu)
    }

    fn build_on(meta: NetMeta, varmap: VarMap, device: &Device) -> Result<PolicyValueNet> {
        let device = device.clone();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let h = meta.hidden;
        let ce = candle_err;
        let tv1 = linear(TV_FEATURES, h, vb.pp("state.tv1")).map_err(ce)?;
        let tv2 = linear(h, h, vb.pp("state.tv2")).map_err(ce)?;
        let program = linear(PROGRAM_FEATURES, h, vb.pp("program")).map_err(ce)?;
        let trunk = linear(2 * h, h, vb.pp("trunk")).map_err(ce)?;
        let policy_state = linear(h, h, vb.pp("policy.state")).map_err(ce)?;
        let policy_move = linear(MOVE_FEATURES, h, vb.pp("policy.move")).map_err(ce)?;
        let policy_out = linear(h, 1, vb.pp("policy.out")).map_err(ce)?;
        let correct = linear(h, 1, vb.pp("value.correct")).map_err(ce)?;
        let length = linear(h, 1, vb.pp("value.length")).map_err(ce)?;
        Ok(PolicyValueNet {
            meta,
            varmap,
            tv1,
            tv2,
            program,
            trunk,
            policy_state,
            policy_move,
            policy_out,
            correct,
            length,
            device,
            value_source: ValueSource::default(),
        })
    }

    /// A copy of this net with its weights on `device` (equal values; the metadata and value
    /// source carried over). Nets are made and loaded on the CPU; this moves one to a GPU.
    ///
    /// Errors: [`Error::Runtime`] when the device cannot hold the weights.
    pub fn to_device(&self, device: &Device) -> Result<PolicyValueNet> {
        let mut net = Self::build_on(self.meta.clone(), VarMap::new(), device)?;
        {
            let src = self
                .varmap
                .data()
                .lock()
                .expect("the var map lock is never poisoned");
            let dst = net
                .varmap
                .data()
                .lock()
                .expect("the var map lock is never poisoned");
            for (name, var) in dst.iter() {
                let from = src.get(name).ok_or_else(|| {
                    Error::Runtime(format!("the net has no variable {name} to move"))
                })?;
                let t = from.as_tensor().to_device(device).map_err(candle_err)?;
                var.set(&t).map_err(candle_err)?;
            }
        }
        net.value_source = self.value_source;
        Ok(net)
    }

    /// Where the net's tensors live.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The checkpoint metadata.
    pub fn meta(&self) -> &NetMeta {
        &self.meta
    }

    /// Mutable metadata (training progress, evaluation results).
    pub fn meta_mut(&mut self) -> &mut NetMeta {
        &mut self.meta
    }

    /// The trainable variables (for an optimiser).
    pub fn vars(&self) -> Vec<candle_core::Var> {
        self.varmap.all_vars()
    }

    /// Whether the net may guide `game`: its instruction vocabulary and `n_max` cover the
    /// task.
    ///
    /// Errors: a one-line reason naming the task.
    pub fn check_task(&self, game: &SortGame) -> std::result::Result<(), String> {
        let task = game.task();
        if self.meta.moves_hash != vocabulary_hash() || self.meta.arch != ARCH {
            return Err(format!(
                "the net was built for another instruction vocabulary or architecture ({}, moves {}) than this superopt ({ARCH}, moves {})",
                self.meta.arch, self.meta.moves_hash, vocabulary_hash()
            ));
        }
        if task.n > self.meta.n_max {
            return Err(format!(
                "the net serves arrays of up to {} elements, task {} has {} (train one with --n-max {})",
                self.meta.n_max, task.name, task.n, task.n
            ));
        }
        if let Some(v) = task.vector {
            let moves = if task.packed {
                "packed-lane moves (vmovdqu, vpshufd, vpblendd, lane minimum and maximum)"
            } else {
                "vector moves (lane minimum and maximum)"
            };
            return Err(format!(
                "the net knows the scalar game (mov, cmp, cmovcc), and task {} plays the {v} {moves}",
                task.name
            ));
        }
        if let Some(r) = task.scratch.iter().find(|r| r.is_callee_saved()) {
            return Err(format!(
                "the net sees only the caller-saved registers, and task {} lists {r} as scratch",
                task.name
            ));
        }
        if !game.is_exact() {
            return Err(format!(
                "the net reads the CPU state on every weak ordering, and task {} is searched on its 0-1 test vectors",
                task.name
            ));
        }
        Ok(())
    }

    fn state_features(&self, game: &SortGame, states: &[&GameState]) -> (Vec<f32>, Vec<f32>) {
        let tv = game.test_vectors();
        let t = tv.len();
        let n = tv.n;
        let f = TV_FEATURES;
        let mut x = vec![0f32; states.len() * t * f];
        let mut p = vec![0f32; states.len() * PROGRAM_FEATURES];
        // First sorted slot of each value, per test vector.
        let slot_of: Vec<[u8; MAX_N]> = tv
            .sorted
            .iter()
            .map(|s| {
                let mut m = [0u8; MAX_N];
                for (k, &v) in s.iter().enumerate().rev() {
                    m[v as usize] = k as u8;
                }
                m
            })
            .collect();
        let pair_base = NUM_REGS * (1 + 2 * MAX_N);
        let flag_base = pair_base + 3 * NUM_REGS * (NUM_REGS - 1) / 2;
        for (b, s) in states.iter().enumerate() {
            let cpu = &s.cpu;
            let defined: Vec<Reg> = Reg::CALLER_SAVED
                .into_iter()
                .filter(|&r| cpu.reg_defined(r))
                .collect();
            for (ti, slots) in slot_of.iter().enumerate() {
                let row = &mut x[(b * t + ti) * f..(b * t + ti + 1) * f];
                for &r in &defined {
                    let base = r.index() * (1 + 2 * MAX_N);
                    let v = cpu.reg(r)[ti] as usize;
                    row[base] = 1.0;
                    row[base + 1 + v] = 1.0;
                    row[base + 1 + MAX_N + slots[v] as usize] = 1.0;
                }
                let mut pair = 0;
                for i in 0..NUM_REGS {
                    for j in i + 1..NUM_REGS {
                        let (ri, rj) = (Reg::from_index(i), Reg::from_index(j));
                        if cpu.reg_defined(ri) && cpu.reg_defined(rj) {
                            let (a, c) = (cpu.reg(ri)[ti], cpu.reg(rj)[ti]);
                            let o = match a.cmp(&c) {
                                std::cmp::Ordering::Less => 0,
                                std::cmp::Ordering::Equal => 1,
                                std::cmp::Ordering::Greater => 2,
                            };
                            row[pair_base + 3 * pair + o] = 1.0;
                        }
                        pair += 1;
                    }
                }
                if cpu.flags_defined() {
                    row[flag_base + 1 + cpu.flags()[ti] as usize] = 1.0;
                } else {
                    row[flag_base] = 1.0;
                }
            }
            let prow = &mut p[b * PROGRAM_FEATURES..(b + 1) * PROGRAM_FEATURES];
            for (k, insn) in s.recent.iter().enumerate() {
                if let Some(insn) = insn {
                    prow[k * INSN_FEATURES..(k + 1) * INSN_FEATURES]
                        .copy_from_slice(&insn_features(*insn));
                }
            }
            prow[RECENT * INSN_FEATURES] = (s.len as f32 - n as f32) / 32.0;
            prow[RECENT * INSN_FEATURES + 1 + (n - 1)] = 1.0;
        }
        (x, p)
    }

    /// Forward pass: policy logits for `actions[i]` of `states[i]` (moves of `game`) and a
    /// value per state.
    ///
    /// Errors: a failed tensor operation ([`Error::Runtime`]).
    pub fn forward(
        &self,
        game: &SortGame,
        states: &[&GameState],
        actions: &[&[Action]],
    ) -> Result<NetOutput> {
        let ce = candle_err;
        let b = states.len();
        let t = game.test_vectors().len();
        let (x, p) = self.state_features(game, states);
        let x = Tensor::from_vec(x, (b * t, TV_FEATURES), &self.device).map_err(ce)?;
        let p = Tensor::from_vec(p, (b, PROGRAM_FEATURES), &self.device).map_err(ce)?;
        let e = self.tv1.forward(&x).and_then(|e| e.relu()).map_err(ce)?;
        let e = self.tv2.forward(&e).and_then(|e| e.relu()).map_err(ce)?;
        let pooled = e
            .reshape((b, t, self.meta.hidden))
            .and_then(|e| e.mean(1))
            .map_err(ce)?;
        let prog = self
            .program
            .forward(&p)
            .and_then(|p| p.relu())
            .map_err(ce)?;
        let joined = Tensor::cat(&[&pooled, &prog], D::Minus1).map_err(ce)?;
        let z = self
            .trunk
            .forward(&joined)
            .and_then(|z| z.relu())
            .map_err(ce)?;
        // Pointer-style policy over the listed actions.
        let mut owner = Vec::new();
        let mut moves = Vec::new();
        for (i, acts) in actions.iter().enumerate() {
            let here = game.estimate(states[i]);
            for &a in acts.iter() {
                owner.push(i as u32);
                moves.extend_from_slice(&insn_features(game.moves()[a as usize]));
                moves.push(lookahead(game, states[i], here, a));
            }
        }
        let np = owner.len();
        let logits = if np == 0 {
            Tensor::zeros(0, DType::F32, &self.device).map_err(ce)?
        } else {
            let owner = Tensor::from_vec(owner, np, &self.device).map_err(ce)?;
            let moves = Tensor::from_vec(moves, (np, MOVE_FEATURES), &self.device).map_err(ce)?;
            let a = self
                .policy_state
                .forward(&z)
                .and_then(|a| a.index_select(&owner, 0))
                .map_err(ce)?;
            let m = self.policy_move.forward(&moves).map_err(ce)?;
            (a + m)
                .and_then(|h| h.relu())
                .and_then(|h| self.policy_out.forward(&h))
                .and_then(|l| l.squeeze(1))
                .map_err(ce)?
        };
        let half = |l: &Linear| -> candle_core::Result<Tensor> {
            candle_nn::ops::sigmoid(&l.forward(&z)?.squeeze(1)?)? * 0.5
        };
        let values =
            (half(&self.correct).map_err(ce)? + half(&self.length).map_err(ce)?).map_err(ce)?;
        Ok(NetOutput { logits, values })
    }

    /// Saves `<stem>.safetensors` and `<stem>.json`, each written atomically.
    ///
    /// Errors: [`Error::Io`] naming the file.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let weights = with_suffix(stem, "safetensors");
        crate::log::write_atomic_with(&weights, |tmp| self.varmap.save(tmp).map_err(candle_err))?;
        let json = with_suffix(stem, "json");
        let text = serde_json::to_string_pretty(&self.meta).expect("metadata serialises");
        crate::log::write_atomic_with(&json, |tmp| {
            std::fs::write(tmp, &text).map_err(|e| Error::io(&json, e))
        })
    }

    /// Loads `<stem>.safetensors` with its `<stem>.json`.
    ///
    /// Errors: one-line [`Error::Log`] errors naming the file when the metadata is missing,
    /// malformed or of a newer version, or the weights cannot be read.
    pub fn load(stem: &Path) -> Result<PolicyValueNet> {
        let json = with_suffix(stem, "json");
        let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
        let bad = |message: String| Error::Log {
            path: json.clone(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid net metadata: {e}")))?;
        if let Some(v) = value.get("version").and_then(|v| v.as_u64()) {
            if v > u64::from(NET_VERSION) {
                return Err(bad(format!(
                    "net metadata version {v} is newer than this superopt supports ({NET_VERSION})"
                )));
            }
            if v < u64::from(NET_VERSION) {
                return Err(bad(format!(
                    "net metadata version {v} is older than this superopt reads ({NET_VERSION}); train the net again"
                )));
            }
        }
        let meta: NetMeta = serde_json::from_value(value)
            .map_err(|e| bad(format!("not valid net metadata: {e}")))?;
        if !(1..=MAX_HIDDEN).contains(&meta.hidden) || !(2..=MAX_N).contains(&meta.n_max) {
            return Err(bad(format!(
                "hidden width {} or n_max {} is out of range",
                meta.hidden, meta.n_max
            )));
        }
        let net = Self::build(meta, VarMap::new())?;
        let weights = with_suffix(stem, "safetensors");
        let mut varmap = net.varmap.clone();
        varmap.load(&weights).map_err(|e| Error::Log {
            path: weights.clone(),
            message: format!("cannot load weights: {}", first_line(&e)),
        })?;
        Ok(net)
    }

    /// Loads a checkpoint for `game`, refusing one that cannot serve it.
    ///
    /// Errors: as [`PolicyValueNet::load`], and `net <stem>.json: the net serves arrays of up
    /// to 3 elements, task sort4 has 4 ...` when [`PolicyValueNet::check_task`] fails.
    pub fn load_for(game: &SortGame, stem: &Path) -> Result<PolicyValueNet> {
        let net = Self::load(stem)?;
        net.check_task(game).map_err(|message| Error::Log {
            path: with_suffix(stem, "json"),
            message,
        })?;
        Ok(net)
    }
}

/// The look-ahead feature of move `a` in `s`: how much the game's estimate of the total
/// length changes by playing it, `(1 + estimate(child) - estimate(s)) / 4`, clamped to
/// `[-1, 2]` (2 for a move the game refuses).
fn lookahead(game: &SortGame, s: &GameState, here: f32, a: Action) -> f32 {
    match game.step(s, a) {
        Some(c) => ((1.0 + game.estimate(&c) - here) / 4.0).clamp(-1.0, 2.0),
        None => 2.0,
    }
}

/// `<stem>.<ext>`, appending to the whole stem (`nets/sort3.v2` + `json` is
/// `nets/sort3.v2.json`, unlike `Path::with_extension`).
pub fn with_suffix(stem: &Path, ext: &str) -> std::path::PathBuf {
    let mut s = stem.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    s.into()
}

/// The stem of a checkpoint named on the command line: `nets/x.safetensors` and
/// `nets/x.json` name `nets/x`; any other path is taken as the stem itself.
pub fn checkpoint_stem(path: &Path) -> std::path::PathBuf {
    let text = path.as_os_str().to_string_lossy();
    for ext in [".safetensors", ".json"] {
        if let Some(stem) = text.strip_suffix(ext) {
            if !stem.is_empty() {
                return stem.into();
            }
        }
    }
    path.to_path_buf()
}

/// Largest hidden width a checkpoint may declare (`train --hidden` allows the same).
pub const MAX_HIDDEN: usize = 4096;

/// The first line of a candle error (with `RUST_BACKTRACE` set, candle appends a backtrace).
pub(crate) fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

fn candle_err(e: candle_core::Error) -> Error {
    Error::Runtime(format!("network: {}", first_line(&e)))
}

impl Evaluator<SortGame> for PolicyValueNet {
    fn name(&self) -> String {
        format!("net:{}", self.meta.tasks.join("+"))
    }

    /// One batched forward pass; priors are the softmax of the legal actions' logits; values
    /// per [`PolicyValueNet::value_source`].
    fn evaluate(
        &self,
        env: &SortGame,
        states: &[&GameState],
        actions: &[&[Action]],
    ) -> Vec<Evaluation> {
        let out = self.forward(env, states, actions).and_then(|o| {
            let logits: Vec<f32> = o.logits.to_vec1().map_err(candle_err)?;
            let values: Vec<f32> = o.values.to_vec1().map_err(candle_err)?;
            Ok((logits, values))
        });
        match out {
            Ok((logits, values)) => {
                let mut at = 0;
                states
                    .iter()
                    .zip(values)
                    .zip(actions)
                    .map(|((s, v), acts)| {
                        let l = &logits[at..at + acts.len()];
                        at += acts.len();
                        Evaluation {
                            priors: crate::search::softmax(l),
                            value: match self.value_source {
                                ValueSource::Net => v,
                                ValueSource::Estimate => crate::search::value_of(
                                    env,
                                    env.cost(s) as f32 + env.estimate(s),
                                ),
                            },
                        }
                    })
                    .collect()
            }
            // A forward pass on valid features cannot fail on the CPU; if it ever does, fall
            // back to uniform priors rather than abort a long search.
            Err(_) => actions
                .iter()
                .map(|a| Evaluation {
                    priors: vec![1.0 / a.len().max(1) as f32; a.len()],
                    value: 0.5,
                })
                .collect(),
        }
    }
}
