//! Policy/value network for the sort game (candle), implementing [`Evaluator`].
//!
//! First part of the learning issue: the network, its features, batched evaluation and
//! checkpoints. Self-play training, the `train` command and shipped nets come next.
//!
//! ## Architecture (after AlphaDev, Nature 618:257, 2023, Methods, "Representation network")
//! * **CPU-state encoder.** For every test vector, a feature vector that does not depend on
//!   the concrete values: per scratch register, whether it is defined, the one-hot rank of its
//!   value among the inputs, and the one-hot of the first sorted slot that value belongs in;
//!   plus the one-hot flags. A two-layer MLP embeds each test vector; the embeddings are
//!   mean-pooled over test vectors, as AlphaDev pools its per-input encodings.
//! * **Program encoder.** The game is Markov in the CPU state (the future depends only on it
//!   and on whether the last move was a `cmp`), so instead of AlphaDev's transformer over the
//!   instructions the program enters as its length and that bit. Cost per evaluation:
//!   `T x (F x H + H x H)` multiply-adds for `T` test vectors and `F` features (sort5: 541 x
//!   (92 x 64 + 64 x 64), about 5.4M).
//! * **Heads.** A policy head over the whole move table (illegal moves masked by taking only
//!   the legal actions' logits) and two value heads, correctness and length, each a sigmoid
//!   scaled to `[0, 0.5]` and summed as in AlphaDev, so the value lies in `[0, 1]` like
//!   [`crate::search::value_of`].
//!
//! A net is tied to a task's move table by [`moves_hash`]; loading it for another move table
//! is refused.

pub mod train;

use crate::error::{Error, Result};
use crate::game::{GameState, SortGame};
use crate::isa::{Reg, NUM_REGS};
use crate::search::{Action, Environment, Evaluation, Evaluator};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the checkpoint metadata format.
pub const NET_VERSION: u32 = 1;

/// Hash of a move table (the text of every move, in order): a net's policy head only means
/// something for the move table it was trained on.
pub fn moves_hash(game: &SortGame) -> String {
    let text: Vec<String> = game.moves().iter().map(|m| m.intel()).collect();
    format!(
        "{:016x}",
        crate::search::hash_bytes(7, text.join("\n").as_bytes())
    )
}

/// Checkpoint metadata, stored as JSON beside the safetensors weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetMeta {
    /// [`NET_VERSION`].
    pub version: u32,
    /// Tasks the net was trained on.
    pub tasks: Vec<String>,
    /// Array length `n` the features are laid out for.
    pub n: usize,
    /// [`moves_hash`] of the move table.
    pub moves_hash: String,
    /// Number of moves (policy size).
    pub num_moves: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Training steps and samples seen so far.
    pub steps: u64,
    /// Samples seen so far.
    pub samples: u64,
}

/// The policy/value network.
pub struct PolicyValueNet {
    meta: NetMeta,
    varmap: VarMap,
    tv1: Linear,
    tv2: Linear,
    trunk: Linear,
    policy: Linear,
    correct: Linear,
    length: Linear,
    device: Device,
    /// `sorted[t][k]` of the game's test vectors, for the slot features.
    sorted: Vec<Vec<u8>>,
    num_features: usize,
}

/// Output of a forward pass on a batch of `B` states.
pub struct NetOutput {
    /// Policy logits, shape `[B, num_moves]`.
    pub logits: Tensor,
    /// Values in `[0, 1]`, shape `[B]`.
    pub values: Tensor,
}

impl PolicyValueNet {
    /// A freshly initialised net for `game` with hidden width `hidden`; equal seeds give
    /// equal weights (weights uniform in `±1/sqrt(fan_in)`, biases zero).
    pub fn new(game: &SortGame, hidden: usize, seed: u64) -> Result<PolicyValueNet> {
        let meta = NetMeta {
            version: NET_VERSION,
            tasks: vec![game.task().name.clone()],
            n: game.task().n,
            moves_hash: moves_hash(game),
            num_moves: game.num_actions(),
            hidden,
            steps: 0,
            samples: 0,
        };
        let net = Self::build(game, meta, VarMap::new())?;
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

    fn build(game: &SortGame, meta: NetMeta, varmap: VarMap) -> Result<PolicyValueNet> {
        let device = Device::Cpu;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let n = meta.n;
        let num_features = NUM_REGS * (2 * n + 1) + 4;
        let h = meta.hidden;
        let ce = candle_err;
        let tv1 = linear(num_features, h, vb.pp("state.tv1")).map_err(ce)?;
        let tv2 = linear(h, h, vb.pp("state.tv2")).map_err(ce)?;
        // The pooled state, the program's length (scaled) and the last-move-was-cmp bit.
        let trunk = linear(h + 2, h, vb.pp("trunk")).map_err(ce)?;
        let policy = linear(h, meta.num_moves, vb.pp("policy")).map_err(ce)?;
        let correct = linear(h, 1, vb.pp("value.correct")).map_err(ce)?;
        let length = linear(h, 1, vb.pp("value.length")).map_err(ce)?;
        let sorted = game.test_vectors().sorted.clone();
        Ok(PolicyValueNet {
            meta,
            varmap,
            tv1,
            tv2,
            trunk,
            policy,
            correct,
            length,
            device,
            sorted,
            num_features,
        })
    }

    /// The checkpoint metadata.
    pub fn meta(&self) -> &NetMeta {
        &self.meta
    }

    /// Adds training progress to the metadata: `steps` learner steps and `samples` samples on
    /// `task` (added to the task list if new).
    pub fn record_training(&mut self, steps: u64, samples: u64, task: &str) {
        self.meta.steps += steps;
        self.meta.samples += samples;
        if !self.meta.tasks.iter().any(|t| t == task) {
            self.meta.tasks.push(task.to_string());
        }
    }

    /// The trainable variables (for an optimiser).
    pub fn vars(&self) -> Vec<candle_core::Var> {
        self.varmap.all_vars()
    }

    /// Features of a batch: per-test-vector features `[B, T, F]` and program features `[B, 2]`.
    pub fn features(&self, states: &[&GameState]) -> Result<(Tensor, Tensor)> {
        let n = self.meta.n;
        let t = self.sorted.len();
        let f = self.num_features;
        let mut x = vec![0f32; states.len() * t * f];
        let mut p = vec![0f32; states.len() * 2];
        for (b, s) in states.iter().enumerate() {
            let cpu = &s.cpu;
            for tv in 0..t {
                let row = &mut x[(b * t + tv) * f..(b * t + tv + 1) * f];
                for r in Reg::ALL {
                    let base = r.index() * (2 * n + 1);
                    if cpu.reg_defined(r) {
                        let v = cpu.reg(r)[tv] as usize;
                        row[base] = 1.0;
                        row[base + 1 + v] = 1.0;
                        let slot = self.sorted[tv]
                            .iter()
                            .position(|&x| x as usize == v)
                            .unwrap_or(0);
                        row[base + 1 + n + slot] = 1.0;
                    }
                }
                let fb = NUM_REGS * (2 * n + 1);
                if cpu.flags_defined() {
                    row[fb + 1 + cpu.flags()[tv] as usize] = 1.0;
                } else {
                    row[fb] = 1.0;
                }
            }
            p[b * 2] = s.len as f32 / 64.0;
            p[b * 2 + 1] = f32::from(u8::from(s.last_cmp));
        }
        let x = Tensor::from_vec(x, (states.len(), t, f), &self.device).map_err(candle_err)?;
        let p = Tensor::from_vec(p, (states.len(), 2), &self.device).map_err(candle_err)?;
        Ok((x, p))
    }

    /// Forward pass on features from [`PolicyValueNet::features`].
    pub fn forward(&self, x: &Tensor, p: &Tensor) -> Result<NetOutput> {
        let ce = candle_err;
        let (b, t, f) = x.dims3().map_err(ce)?;
        let e = x.reshape((b * t, f)).map_err(ce)?;
        let e = self.tv1.forward(&e).and_then(|e| e.relu()).map_err(ce)?;
        let e = self.tv2.forward(&e).and_then(|e| e.relu()).map_err(ce)?;
        let pooled = e
            .reshape((b, t, self.meta.hidden))
            .and_then(|e| e.mean(1))
            .map_err(ce)?;
        let joined = Tensor::cat(&[&pooled, p], D::Minus1).map_err(ce)?;
        let z = self
            .trunk
            .forward(&joined)
            .and_then(|z| z.relu())
            .map_err(ce)?;
        let logits = self.policy.forward(&z).map_err(ce)?;
        let half = |l: &Linear| -> candle_core::Result<Tensor> {
            candle_nn::ops::sigmoid(&l.forward(&z)?.squeeze(1)?)? * 0.5
        };
        let values =
            (half(&self.correct).map_err(ce)? + half(&self.length).map_err(ce)?).map_err(ce)?;
        Ok(NetOutput { logits, values })
    }

    /// Saves `<stem>.safetensors` and `<stem>.json`, each written atomically.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let weights = stem.with_extension("safetensors");
        crate::log::write_atomic_with(&weights, |tmp| self.varmap.save(tmp).map_err(candle_err))?;
        let json = stem.with_extension("json");
        let text = serde_json::to_string_pretty(&self.meta).expect("metadata serialises");
        crate::log::write_atomic_with(&json, |tmp| {
            std::fs::write(tmp, &text).map_err(|e| Error::io(&json, e))
        })
    }

    /// Loads `<stem>.safetensors` with its `<stem>.json` for `game`.
    ///
    /// Errors: [`Error::Log`]-style one-line errors naming the file when the metadata is
    /// missing, malformed or of a newer version, or when the net's move table differs from the
    /// game's (`net nets/x.json was trained for another move table ...`).
    pub fn load(game: &SortGame, stem: &Path) -> Result<PolicyValueNet> {
        let json = stem.with_extension("json");
        let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
        let bad = |message: String| Error::Log {
            path: json.clone(),
            message,
        };
        let meta: NetMeta =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid net metadata: {e}")))?;
        if meta.version > NET_VERSION {
            return Err(bad(format!(
                "net metadata version {} is newer than this superopt supports ({NET_VERSION})",
                meta.version
            )));
        }
        let want = moves_hash(game);
        if meta.moves_hash != want || meta.n != game.task().n {
            return Err(bad(format!(
                "the net was trained for another move table (n = {}, moves {}) than task {} (n = {}, moves {})",
                meta.n,
                meta.moves_hash,
                game.task().name,
                game.task().n,
                want
            )));
        }
        let net = Self::build(game, meta, VarMap::new())?;
        let weights = stem.with_extension("safetensors");
        let mut varmap = net.varmap.clone();
        varmap.load(&weights).map_err(|e| Error::Log {
            path: weights.clone(),
            message: format!("cannot load weights: {e}"),
        })?;
        Ok(net)
    }
}

fn candle_err(e: candle_core::Error) -> Error {
    Error::Runtime(format!("network: {e}"))
}

impl Evaluator<SortGame> for PolicyValueNet {
    fn name(&self) -> String {
        format!("net:{}", self.meta.tasks.join("+"))
    }

    /// One batched forward pass; priors are the softmax of the legal actions' logits.
    fn evaluate(
        &self,
        _env: &SortGame,
        states: &[&GameState],
        actions: &[&[Action]],
    ) -> Vec<Evaluation> {
        let out = self
            .features(states)
            .and_then(|(x, p)| self.forward(&x, &p))
            .and_then(|o| {
                let logits: Vec<Vec<f32>> = o.logits.to_vec2().map_err(candle_err)?;
                let values: Vec<f32> = o.values.to_vec1().map_err(candle_err)?;
                Ok((logits, values))
            });
        match out {
            Ok((logits, values)) => logits
                .iter()
                .zip(values)
                .zip(actions)
                .map(|((l, v), acts)| {
                    let legal: Vec<f32> = acts.iter().map(|&a| l[a as usize]).collect();
                    Evaluation {
                        priors: crate::search::softmax(&legal),
                        value: v,
                    }
                })
                .collect(),
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
