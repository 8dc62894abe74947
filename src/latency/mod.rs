//! Latency: meters that say how many cycles a kernel takes, behind one trait.
//!
//! * [`MeterKind::Perf`]: hardware core cycles from perf-event (`PERF_COUNT_HW_CPU_CYCLES`,
//!   user space only), where the kernel and the hypervisor allow it.
//! * [`MeterKind::Tsc`]: time-stamp-counter reference cycles (`lfence; rdtsc` ...
//!   `rdtscp; lfence`), where hardware counters are unsupported, as on the machine this
//!   project is developed on and on CI (perf_event_open fails with ENOENT for CPU cycles).
//!   The TSC ticks at a fixed reference frequency, not the core clock.
//! * [`MeterKind::Model`]: the deterministic static model of [`model`] (AMD Zen 4 or Intel Golden Cove table,
//!   critical path and port pressure): for tests, and as the cheap proxy during search.
//!
//! # How the real meters time a kernel
//!
//! A call of a sort3 costs about as much as the kernel itself, so the kernel is not called
//! once per input: the JIT code (or, for compiled Rust baselines, a Rust loop) runs the kernel
//! body over a whole batch of arrays laid end to end, and each pass is one sample. Each
//! call's array address depends on the previous call's outputs (the OR of its `n` slots, each
//! read with a plain load, masked with a zero the compiler cannot see), so calls cannot
//! overlap in the out-of-order
//! core: the figure is the **latency** of one call, plus the cost of that chain (a
//! store-to-load forwarding, `n` loads and a few ALU operations), which is the same for every
//! subject of an `n` and is shown by the `empty` row of `superopt bench`.
//! For throughput, [`Runner::independent`] runs the same subject in a loop that simply steps
//! to the next array ([`Chain::Independent`]): the core may overlap calls, and the figure is
//! the reciprocal throughput of back-to-back calls (for the model meter, the largest
//! port-pressure bound, [`model::ModelState::throughput_cycles`]).
//!
//! Each measurement ([`measure_all`]): the thread is pinned to its CPU where the OS allows;
//! the subjects take turns in `rounds` rounds; in each, a subject runs `warmup / rounds`
//! discarded passes, then `samples / rounds` timed passes, each over `inputs` new random
//! arrays (the same arrays for every subject, see [`Inputs`]; drawn outside the timed region;
//! placed at one of 64 cache-line offsets in a 4 KiB page chosen by the pass number, so that
//! where the allocator happened to put the buffer does not differ between runs). A round's
//! figure is the `quantile` of its per-call times (default the 5th percentile, as AlphaDev,
//! Nature 2023, Methods); the result is the median of the rounds with a distribution-free 95%
//! confidence interval from order statistics, which therefore covers drift during the run.
//! AlphaDev's passes were over 10,000 inputs; ours default to 1,000 so that the batch (at
//! most 28 KB for n = 7) stays in the L1 data cache.

pub mod model;
mod timing;

use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};

pub use timing::{hardware_counters, lanes, Chain, Runner};

/// Which meter produced a figure.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MeterKind {
    /// Hardware core cycles (perf-event).
    Perf,
    /// Time-stamp-counter reference cycles (rdtscp).
    Tsc,
    /// The static model (Zen 4 or Golden Cove table, `--uarch`).
    Model,
}

impl MeterKind {
    /// The unit of this meter's figures: `cycles`, `ref-cycles` or `model cycles`.
    pub fn unit(self) -> &'static str {
        match self {
            MeterKind::Perf => "cycles",
            MeterKind::Tsc => "ref-cycles",
            MeterKind::Model => "model cycles",
        }
    }

    /// The name on the command line: `perf`, `tsc`, `model`.
    pub fn name(self) -> &'static str {
        match self {
            MeterKind::Perf => "perf",
            MeterKind::Tsc => "tsc",
            MeterKind::Model => "model",
        }
    }
}

/// How a real meter samples (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct SampleConfig {
    /// Timed passes kept (default 1,000).
    pub samples: usize,
    /// Arrays per pass (default 1,000).
    pub inputs: usize,
    /// Passes run and discarded first (default 100).
    pub warmup: usize,
    /// The quantile reported, in `(0, 1)` (default 0.05).
    pub quantile: f64,
    /// Seed of the random inputs (`ChaCha8Rng`; default 0).
    pub seed: u64,
    /// Rounds (default 10): the subjects are measured in turn, `samples / rounds` passes
    /// each per round, so that drift during a run (clock changes, other processes) reaches
    /// every subject alike and shows in the interval.
    pub rounds: usize,
    /// The table of the model meter (default Zen 4; the CLI's `--uarch`).
    pub uarch: model::Uarch,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            samples: 1000,
            inputs: 1000,
            warmup: 100,
            quantile: 0.05,
            seed: 0,
            rounds: 10,
            uarch: model::Uarch::Zen4,
        }
    }
}

impl SampleConfig {
    /// Checks the settings. Errors: [`Error::Runtime`] naming the bad one.
    pub fn check(&self) -> Result<()> {
        if !(3..=100).contains(&self.rounds) {
            return Err(Error::Runtime(format!(
                "--rounds must be between 3 and 100, got {}",
                self.rounds
            )));
        }
        if self.samples > 1_000_000 {
            return Err(Error::Runtime(format!(
                "--samples must be at most 1000000, got {}",
                self.samples
            )));
        }
        if self.samples < 10 * self.rounds {
            return Err(Error::Runtime(format!(
                "--samples must be at least 10 per round ({} for {} rounds), got {}",
                10 * self.rounds,
                self.rounds,
                self.samples
            )));
        }
        if self.inputs == 0 || self.inputs > 1_000_000 {
            return Err(Error::Runtime(format!(
                "--inputs must be between 1 and 1000000, got {}",
                self.inputs
            )));
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(Error::Runtime(format!(
                "--quantile must be between 0 and 1 (exclusive), got {}",
                self.quantile
            )));
        }
        Ok(())
    }
}

/// One figure: cycles per call with its confidence interval.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// The meter that produced it.
    pub meter: MeterKind,
    /// Cycles per call in the meter's unit ([`MeterKind::unit`]): the quantile of the samples
    /// for real meters, the model's figure for the model.
    pub cycles: f64,
    /// 95% confidence interval of `cycles` (equal to it for the model).
    pub interval: (f64, f64),
    /// Nanoseconds per call (real meters only), converted with the measured TSC frequency.
    pub ns: Option<f64>,
    /// Samples behind the figure (0 for the model).
    pub samples: usize,
}

/// The random inputs of a run, the same for every subject: pass `s` (warm-up passes
/// included) sorts `per_pass` arrays of `n` i32, uniform over the whole i32 range, drawn from
/// `ChaCha8Rng` seeded with `seed` and `s`. Every pass has new arrays: with the same arrays in
/// every pass, the branch predictor learns a 1,000-call sequence of outcomes, and branchy
/// code (`sort_unstable`) looks faster than it is on fresh data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// Array length.
    pub n: usize,
    /// Arrays per pass.
    pub per_pass: usize,
    /// Seed. Pass `s` draws from `mix64(seed ^ s * 0x9E37_79B9_7F4A_7C15)`: the passes of one
    /// run never repeat an array stream (the multiplier K is odd), but two seeds whose xor
    /// is `s * K ^ t * K` for passes `s != t` (seeds 0 and K, for one) share the arrays of
    /// those passes. That is harmless for timing, which needs fresh arrays within a run, not
    /// different ones between seeds.
    pub seed: u64,
}

impl Inputs {
    /// Fills `buf` (`n * per_pass` i32) with the arrays of pass `pass`.
    pub fn fill(&self, pass: usize, buf: &mut [i32]) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(crate::search::mix64(
            self.seed ^ (pass as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        for v in buf.iter_mut() {
            *v = rng.gen();
        }
    }
}

/// The `q`-quantile of `sorted` (ascending, non-empty) with a distribution-free 95% confidence
/// interval: the order statistics at ranks `m q -/+ 1.96 sqrt(m q (1 - q))` (normal
/// approximation of the binomial count of samples below the quantile; W. J. Conover,
/// "Practical Nonparametric Statistics", 3rd ed., 1999, §3.2). Returns
/// `(estimate, (low, high))`.
pub fn quantile_interval(sorted: &[f64], q: f64) -> (f64, (f64, f64)) {
    assert!(!sorted.is_empty(), "quantile of no samples");
    let m = sorted.len() as f64;
    let at = |r: f64| sorted[(r.max(0.0) as usize).min(sorted.len() - 1)];
    let half = 1.96 * (m * q * (1.0 - q)).sqrt();
    let est = at((m * q).floor());
    (est, (at((m * q - half).floor()), at((m * q + half).ceil())))
}

/// The figure of one timed pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassFigure {
    /// Count per call in the meter's unit.
    pub per_call: f64,
    /// Nanoseconds per call, where the meter knows the clock.
    pub ns: Option<f64>,
}

/// A meter: runs a [`Runner`] over passes of the inputs and reads its counter.
pub trait Meter {
    /// Which meter this is.
    fn kind(&self) -> MeterKind;
    /// One line for reports, e.g. `tsc: rdtscp reference cycles (TSC at 2.60 GHz)`.
    fn describe(&self) -> String;
    /// Runs `runner` over the arrays of each pass in `passes` (indices into `inputs`) and
    /// returns one figure per pass; `None` when this meter cannot measure the subject (the
    /// model has no instructions for compiled Rust). The model ignores the passes and returns
    /// its one figure.
    ///
    /// Errors: [`Error::Runtime`] when a counter cannot be read.
    fn passes(
        &mut self,
        runner: &Runner,
        inputs: &Inputs,
        passes: &[usize],
    ) -> Result<Option<Vec<PassFigure>>>;
}

/// Measures every runner with `meter` on the same inputs, in interleaved rounds (see
/// [`SampleConfig::rounds`]): per round and subject, `warmup / rounds` passes are discarded
/// and `samples / rounds` timed; the round's figure is the `quantile` of its passes. The
/// result per subject is the median of its round figures, with the distribution-free 95%
/// interval of that median ([`quantile_interval`] at 0.5), so the interval covers the
/// variation between rounds, not just within them. The thread is pinned to its CPU for the
/// whole measurement where the OS allows.
///
/// The model meter gives each kernel its one figure (interval of zero width).
///
/// Errors: bad settings ([`SampleConfig::check`]) or a counter that cannot be read.
pub fn measure_all(
    meter: &mut dyn Meter,
    runners: &[&Runner],
    inputs: &Inputs,
    cfg: &SampleConfig,
) -> Result<Vec<Option<Measurement>>> {
    cfg.check()?;
    let kind = meter.kind();
    if kind == MeterKind::Model {
        return runners
            .iter()
            .map(|r| {
                Ok(meter.passes(r, inputs, &[0])?.map(|f| Measurement {
                    meter: kind,
                    cycles: f[0].per_call,
                    interval: (f[0].per_call, f[0].per_call),
                    ns: None,
                    samples: 0,
                }))
            })
            .collect();
    }
    let _pin = timing::Pin::new();
    let per_round = cfg.samples / cfg.rounds;
    let warm = (cfg.warmup / cfg.rounds).max(1);
    // Per subject, per round: (the round's quantile, its ns per call); `None` once the meter
    // cannot measure the subject.
    type Rounds = Option<Vec<(f64, Option<f64>)>>;
    let mut rounds: Vec<Rounds> = vec![Some(Vec::new()); runners.len()];
    for r in 0..cfg.rounds {
        // Warm-up passes draw from their own pass numbers, after every timed one.
        let warm_passes: Vec<usize> = (0..warm)
            .map(|k| cfg.rounds * per_round + r * warm + k)
            .collect();
        let timed: Vec<usize> = (r * per_round..(r + 1) * per_round).collect();
        for (runner, slot) in runners.iter().zip(rounds.iter_mut()) {
            if slot.is_none() {
                continue;
            }
            if meter.passes(runner, inputs, &warm_passes)?.is_none() {
                *slot = None; // this meter cannot measure this subject
                continue;
            }
            let acc = slot.as_mut().expect("checked above");
            let figs = meter.passes(runner, inputs, &timed)?.unwrap_or_default();
            let mut x: Vec<f64> = figs.iter().map(|f| f.per_call).collect();
            x.sort_by(f64::total_cmp);
            let mut ns: Vec<f64> = figs.iter().filter_map(|f| f.ns).collect();
            ns.sort_by(f64::total_cmp);
            let q = quantile_interval(&x, cfg.quantile).0;
            acc.push((
                q,
                (!ns.is_empty()).then(|| quantile_interval(&ns, cfg.quantile).0),
            ));
        }
    }
    Ok(rounds
        .into_iter()
        .map(|acc| {
            let acc = acc.filter(|a| !a.is_empty())?;
            let mut q: Vec<f64> = acc.iter().map(|a| a.0).collect();
            q.sort_by(f64::total_cmp);
            let mut ns: Vec<f64> = acc.iter().filter_map(|a| a.1).collect();
            ns.sort_by(f64::total_cmp);
            let (cycles, interval) = quantile_interval(&q, 0.5);
            Some(Measurement {
                meter: kind,
                cycles,
                interval,
                ns: (!ns.is_empty()).then(|| quantile_interval(&ns, 0.5).0),
                samples: per_round * cfg.rounds,
            })
        })
        .collect())
}

/// The static model as a [`Meter`], with the table it describes (the figures themselves come
/// from each [`Runner`]'s model state, built with the same table by the caller).
pub struct ModelMeter(pub model::Uarch);

impl Meter for ModelMeter {
    fn kind(&self) -> MeterKind {
        MeterKind::Model
    }
    fn describe(&self) -> String {
        format!(
            "model: static {} model (dependencies scheduled on pipes, port-pressure bounds; src/latency/model.rs)",
            self.0.name()
        )
    }
    fn passes(
        &mut self,
        runner: &Runner,
        _inputs: &Inputs,
        _passes: &[usize],
    ) -> Result<Option<Vec<PassFigure>>> {
        let independent = runner.chain() == Chain::Independent;
        Ok(runner.model().map(|m| {
            vec![PassFigure {
                per_call: if independent {
                    m.throughput_cycles()
                } else {
                    m.cycles()
                },
                ns: None,
            }]
        }))
    }
}

/// Which meter `kind` means: itself, or, for `None`, the best available here: perf where
/// hardware counters open, else tsc, with why perf was not taken (`hardware cycle counters
/// are unavailable: ...`).
pub fn resolve(kind: Option<MeterKind>) -> (MeterKind, Option<String>) {
    match kind {
        Some(k) => (k, None),
        None => match hardware_counters() {
            Ok(()) => (MeterKind::Perf, None),
            Err(why) => (MeterKind::Tsc, Some(why)),
        },
    }
}

/// The meter for `kind` (see [`resolve`] for `None`).
///
/// Errors: bad settings ([`SampleConfig::check`]); [`Error::Runtime`] for perf where counters
/// are unavailable (one line), or for tsc on a CPU without rdtscp.
pub fn meter(kind: MeterKind, cfg: &SampleConfig) -> Result<Box<dyn Meter>> {
    cfg.check()?;
    Ok(match kind {
        MeterKind::Model => Box::new(ModelMeter(cfg.uarch)),
        MeterKind::Perf => Box::new(timing::PerfMeter::new(cfg.clone())?),
        MeterKind::Tsc => Box::new(timing::TscMeter::new(cfg.clone())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interval_brackets_the_estimate() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let (e, (lo, hi)) = quantile_interval(&x, 0.05);
        assert_eq!(e, 50.0);
        // 1.96 * sqrt(1000 * 0.05 * 0.95) = 13.5
        assert_eq!((lo, hi), (36.0, 64.0));
        let (e, (lo, hi)) = quantile_interval(&x, 0.5);
        assert_eq!((e, lo, hi), (500.0, 469.0, 531.0));
        assert_eq!(quantile_interval(&[3.0], 0.05), (3.0, (3.0, 3.0)));
    }

    #[test]
    fn random_inputs_are_reproducible_and_new_each_pass() {
        let inputs = Inputs {
            n: 3,
            per_pass: 10,
            seed: 1,
        };
        let pass = |inputs: &Inputs, s| {
            let mut b = vec![0; 30];
            inputs.fill(s, &mut b);
            b
        };
        assert_eq!(pass(&inputs, 0), pass(&inputs, 0));
        assert_ne!(pass(&inputs, 0), pass(&inputs, 1));
        let other = Inputs {
            seed: 2,
            ..inputs.clone()
        };
        assert_ne!(pass(&inputs, 0), pass(&other, 0));
    }

    #[test]
    fn bad_sample_settings_are_refused() {
        let bad = SampleConfig {
            samples: 50,
            ..SampleConfig::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "--samples must be at least 10 per round (100 for 10 rounds), got 50"
        );
        let bad = SampleConfig {
            quantile: 1.0,
            ..SampleConfig::default()
        };
        assert!(bad.check().is_err());
    }
}
