//! The real meters (tsc, perf) and what they time: a [`Runner`] runs one subject over a batch
//! of arrays in a dependent chain (see the [module documentation](super)), or, for throughput,
//! in an independent one ([`Chain`]).

use super::model::ModelState;
use super::{Inputs, Meter, MeterKind, PassFigure, SampleConfig};
use crate::error::{Error, Result};
use std::time::{Duration, Instant};

/// How the chain loop goes from one array to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The next array's address depends on this call's outputs, so calls cannot overlap: the
    /// figure per call is the **latency** of one call (plus the chain's own cost).
    Dependent,
    /// The next array is simply the next one, so the core may overlap calls: the figure per
    /// call is the **reciprocal throughput** of back-to-back independent calls.
    Independent,
}

/// One subject, ready to run over a batch of arrays: a JIT-assembled kernel or a compiled Rust
/// baseline.
pub struct Runner {
    n: usize,
    body: Body,
    chain: Chain,
    /// What the loop runs, kept so that [`Runner::independent`] can build its twin.
    recipe: Recipe,
}

#[derive(Clone)]
enum Recipe {
    Inline(Vec<u8>),
    Call(u64),
}

struct Body {
    jit: jit::ChainJit,
    /// The model state of an inlined kernel; `None` for a called Rust function.
    model: Option<ModelState>,
}

impl Runner {
    /// A kernel (x86-64 machine code for `void f(int32_t *buf)` on `n` i32, no `ret`) inside
    /// the JIT chain loop, with its model state for the model meter. A kernel on 64-bit
    /// elements runs with `n` twice its element count ([`lanes`]): the loop then steps by its
    /// array of `8n` bytes and reads every output word into the chain.
    ///
    /// `code` must have passed the oracle's static check (no control flow, memory only at
    /// `[rdi + 4k]` inside the array, no writes to rsp or rdi): it runs on the CPU as it is.
    /// Callee-saved registers are saved around the loop, so a kernel may use them.
    ///
    /// Errors: [`Error::Runtime`] when `n` is not in `1..=16` (twice [`crate::task::MAX_N`])
    /// or the JIT cannot map memory.
    pub fn kernel(code: &[u8], model: ModelState, n: usize) -> Result<Runner> {
        check_n(n)?;
        Ok(Runner {
            n,
            body: Body {
                jit: jit::ChainJit::new(jit::Inner::Inline(code), n, Chain::Dependent)?,
                model: Some(model),
            },
            chain: Chain::Dependent,
            recipe: Recipe::Inline(code.to_vec()),
        })
    }

    /// The same subject in the [`Chain::Independent`] loop: what a throughput figure times.
    ///
    /// Errors: [`Error::Runtime`] when the JIT cannot map memory.
    pub fn independent(&self) -> Result<Runner> {
        let inner = match &self.recipe {
            Recipe::Inline(code) => jit::Inner::Inline(code),
            Recipe::Call(f) => jit::Inner::Call(*f),
        };
        Ok(Runner {
            n: self.n,
            body: Body {
                jit: jit::ChainJit::new(inner, self.n, Chain::Independent)?,
                model: self.body.model,
            },
            chain: Chain::Independent,
            recipe: self.recipe.clone(),
        })
    }

    /// How this runner's loop chains its calls.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// The chain loop with no kernel in it: the overhead every figure of an `n` includes.
    pub fn empty(n: usize) -> Result<Runner> {
        Runner::kernel(&[], ModelState::default(), n)
    }

    /// A compiled Rust function on one array, called (`call`) from the same chain loop.
    fn called(f: native::ArrayFn, n: usize) -> Result<Runner> {
        let f = f as usize as u64;
        Ok(Runner {
            n,
            body: Body {
                jit: jit::ChainJit::new(jit::Inner::Call(f), n, Chain::Dependent)?,
                model: None,
            },
            chain: Chain::Dependent,
            recipe: Recipe::Call(f),
        })
    }

    /// An empty Rust function called from the chain loop: the overhead of a call.
    pub fn empty_call(n: usize) -> Result<Runner> {
        check_n(n)?;
        Runner::called(native::empty, n)
    }

    /// `<[i32; n]>::sort_unstable`, compiled by rustc, called from the chain loop. Errors as
    /// [`Runner::kernel`] for a bad `n`.
    pub fn sort_unstable(n: usize) -> Result<Runner> {
        check_n(n)?;
        let f: native::ArrayFn = match n {
            1 => native::sort_unstable::<1>,
            2 => native::sort_unstable::<2>,
            3 => native::sort_unstable::<3>,
            4 => native::sort_unstable::<4>,
            5 => native::sort_unstable::<5>,
            6 => native::sort_unstable::<6>,
            _ => native::sort_unstable::<7>,
        };
        Runner::called(f, n)
    }

    /// The optimal-size sorting network for `n` (2 to 5) written in Rust with `min`/`max`
    /// (which rustc compiles to cmov), called from the chain loop; `None` for other `n`.
    pub fn minmax_network(n: usize) -> Option<Result<Runner>> {
        let f: native::ArrayFn = match n {
            2 => native::minmax_network::<2>,
            3 => native::minmax_network::<3>,
            4 => native::minmax_network::<4>,
            5 => native::minmax_network::<5>,
            6 => native::minmax_network::<6>,
            7 => native::minmax_network::<7>,
            8 => native::minmax_network::<8>,
            _ => return None,
        };
        Some(Runner::called(f, n))
    }

    /// Array length.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The model state of a JIT kernel; `None` for compiled baselines.
    pub fn model(&self) -> Option<&ModelState> {
        self.body.model.as_ref()
    }

    /// Runs the subject over every array of `buf` (`buf.len()` a multiple of `n`), in place.
    ///
    /// Panics if `buf.len()` is not a positive multiple of `n`.
    pub fn run(&self, buf: &mut [i32]) {
        assert!(
            !buf.is_empty() && buf.len() % self.n == 0,
            "a batch is whole arrays"
        );
        self.body.jit.run(buf, std::hint::black_box(0));
    }
}

fn check_n(n: usize) -> Result<()> {
    if (1..=2 * crate::task::MAX_N).contains(&n) {
        Ok(())
    } else {
        Err(Error::Runtime(format!(
            "latency meters support 1 to {} 32-bit array words, got {n}",
            2 * crate::task::MAX_N
        )))
    }
}

/// The 32-bit words an array of `n` elements of type `el` fills: `n`, or `2n` for 64-bit
/// elements. What [`Runner::kernel`] and [`super::Inputs::n`] take for such a kernel.
pub fn lanes(n: usize, el: crate::isa::Element) -> usize {
    n * el.bytes() / 4
}

mod native {
    //! Compiled Rust baselines: SysV functions on one array, called from the JIT chain loop.

    /// The signature the chain loop calls.
    pub(super) type ArrayFn = extern "sysv64" fn(*mut i32);

    /// # Safety (of the call)
    /// The chain loop passes a pointer to `N` live, aligned i32.
    #[inline(never)]
    pub(super) extern "sysv64" fn sort_unstable<const N: usize>(p: *mut i32) {
        // SAFETY: see above.
        let a = unsafe { &mut *(p as *mut [i32; N]) };
        a.sort_unstable();
    }

    #[inline(never)]
    pub(super) extern "sysv64" fn minmax_network<const N: usize>(p: *mut i32) {
        // SAFETY: as for `sort_unstable`.
        let a = unsafe { &mut *(p as *mut [i32; N]) };
        for &(i, j) in crate::game::network::classic_comparators(N).unwrap_or(&[]) {
            let (x, y) = (a[i], a[j]);
            a[i] = x.min(y);
            a[j] = x.max(y);
        }
    }

    #[inline(never)]
    pub(super) extern "sysv64" fn empty(_: *mut i32) {}
}

/// Whether hardware cycle counters can be opened here: `Ok(())`, or the one-line reason
/// (`hardware cycle counters are unavailable: perf_event_open for CPU cycles failed: No such
/// file or directory (os error 2)`).
pub fn hardware_counters() -> std::result::Result<(), String> {
    open_cycles().map(|_| ())
}

fn open_cycles() -> std::result::Result<perf_event::Counter, String> {
    let mut b = perf_event::Builder::new().kind(perf_event::events::Hardware::CPU_CYCLES);
    b.exclude_kernel(true);
    b.exclude_hv(true);
    b.build().map_err(|e| {
        format!(
            "hardware cycle counters are unavailable: perf_event_open for CPU cycles failed: {e}"
        )
    })
}

/// Pins the calling thread to the CPU it runs on until dropped (then restores its mask).
/// Where the OS refuses, the thread stays unpinned and [`Pin::pinned`] says so.
pub(super) struct Pin {
    old: Option<libc::cpu_set_t>,
}

impl Pin {
    pub(super) fn new() -> Pin {
        // SAFETY: plain libc calls on this thread's affinity mask, with valid pointers and
        // sizes; failures are reported by return values and leave the mask unchanged.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            let cpu = libc::sched_getcpu();
            if cpu < 0 || libc::sched_getaffinity(0, size, &mut old) != 0 {
                return Pin { old: None };
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                return Pin { old: None };
            }
            Pin { old: Some(old) }
        }
    }
}

impl Pin {
    pub(super) fn pinned(&self) -> bool {
        self.old.is_some()
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            // SAFETY: restores the mask read in `new`.
            unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old);
            }
        }
    }
}

/// Reads the TSC after earlier instructions completed (`lfence; rdtsc`).
#[inline(always)]
fn tsc_start() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects; every x86-64 CPU has both.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// Reads the TSC once earlier instructions completed, before later ones start
/// (`rdtscp; lfence`).
#[inline(always)]
fn tsc_end() -> u64 {
    let mut aux = 0u32;
    // SAFETY: as above; rdtscp was checked for by `TscMeter::new`.
    unsafe {
        let t = core::arch::x86_64::__rdtscp(&mut aux);
        core::arch::x86_64::_mm_lfence();
        t
    }
}

/// TSC ticks per nanosecond, measured against the OS clock over 50 ms.
fn tsc_ghz() -> f64 {
    let (t0, c0) = (Instant::now(), tsc_start());
    while t0.elapsed() < Duration::from_millis(50) {
        std::hint::spin_loop();
    }
    let (c1, dt) = (tsc_end(), t0.elapsed());
    (c1 - c0) as f64 / dt.as_nanos() as f64
}

fn has_rdtscp() -> bool {
    // CPUID leaf 8000_0001h, EDX bit 27 (RDTSCP); the leaf exists on every x86-64 CPU.
    let r = core::arch::x86_64::__cpuid(0x8000_0001);
    r.edx & (1 << 27) != 0
}

/// Runs `runner` over each pass of `passes`, with `read` giving the counter's difference and
/// the TSC ticks over the pass; returns per-call figures.
fn run_passes(
    runner: &Runner,
    inputs: &Inputs,
    passes: &[usize],
    ghz: f64,
    mut read: impl FnMut(&mut dyn FnMut()) -> Result<(u64, u64)>,
) -> Result<Vec<PassFigure>> {
    let len = inputs.n * inputs.per_pass;
    // Room to place the arrays anywhere in a 4 KiB page, at 64-byte steps.
    let mut backing = vec![0i32; len + PAGE_WORDS * 2];
    let page = page_start(&backing);
    let calls = inputs.per_pass as f64;
    passes
        .iter()
        .map(|&s| {
            let at = page + placement(s);
            let work = &mut backing[at..at + len];
            inputs.fill(s, work);
            let (count, ticks) = read(&mut || runner.run(work))?;
            Ok(PassFigure {
                per_call: count as f64 / calls,
                ns: (ghz > 0.0).then(|| ticks as f64 / calls / ghz),
            })
        })
        .collect()
}

/// i32 words in a 4 KiB page.
const PAGE_WORDS: usize = 1024;

/// The index of the first 4 KiB-aligned word of `v`.
fn page_start(v: &[i32]) -> usize {
    let addr = v.as_ptr() as usize;
    (addr.next_multiple_of(4096) - addr) / 4
}

/// Where pass `s` puts its arrays in the page: one of the 64 cache-line offsets, chosen by a
/// hash of `s`. Every pass has its own placement, the same in every run and for every
/// subject, so that where the allocator put the buffer (which decides 4K aliasing with the
/// stack and cache-set conflicts) does not differ between runs.
fn placement(s: usize) -> usize {
    (crate::search::mix64(s as u64 ^ 0xA11C) % 64) as usize * 16
}

/// `1000 passes of 1000 calls in 10 rounds (100 warm-up), quantile 0.05, 95% interval over
/// rounds`.
fn sampling(cfg: &SampleConfig) -> String {
    format!(
        "{} passes of {} calls in {} rounds ({} warm-up), quantile {} per round, median of rounds with 95% interval{}",
        cfg.samples,
        cfg.inputs,
        cfg.rounds,
        cfg.warmup,
        cfg.quantile,
        if Pin::new().pinned() { ", thread pinned to its CPU" } else { ", thread not pinned (the OS refused)" }
    )
}

/// The tsc meter: rdtscp reference cycles.
pub(super) struct TscMeter {
    cfg: SampleConfig,
    ghz: f64,
}

impl TscMeter {
    /// Errors: [`Error::Runtime`] on a CPU without rdtscp.
    pub(super) fn new(cfg: SampleConfig) -> Result<TscMeter> {
        if !has_rdtscp() {
            return Err(Error::Runtime(
                "the tsc meter needs rdtscp, which this CPU lacks".into(),
            ));
        }
        Ok(TscMeter {
            cfg,
            ghz: tsc_ghz(),
        })
    }
}

impl Meter for TscMeter {
    fn kind(&self) -> MeterKind {
        MeterKind::Tsc
    }
    fn describe(&self) -> String {
        format!(
            "tsc: rdtscp reference cycles (TSC at {:.2} GHz), {}",
            self.ghz,
            sampling(&self.cfg)
        )
    }
    fn passes(
        &mut self,
        runner: &Runner,
        inputs: &Inputs,
        passes: &[usize],
    ) -> Result<Option<Vec<PassFigure>>> {
        run_passes(runner, inputs, passes, self.ghz, |run| {
            let t0 = tsc_start();
            run();
            let t = tsc_end() - t0;
            Ok((t, t))
        })
        .map(Some)
    }
}

/// The perf meter: hardware core cycles in user space, read around each pass.
pub(super) struct PerfMeter {
    cfg: SampleConfig,
    counter: perf_event::Counter,
    ghz: f64,
}

impl PerfMeter {
    /// Errors: [`Error::Runtime`] with the one-line reason of [`hardware_counters`].
    pub(super) fn new(cfg: SampleConfig) -> Result<PerfMeter> {
        let counter = open_cycles().map_err(Error::Runtime)?;
        Ok(PerfMeter {
            cfg,
            counter,
            ghz: if has_rdtscp() { tsc_ghz() } else { 0.0 },
        })
    }
}

impl Meter for PerfMeter {
    fn kind(&self) -> MeterKind {
        MeterKind::Perf
    }
    fn describe(&self) -> String {
        format!(
            "perf: hardware core cycles (user space; the enable/disable system calls add a \
             constant to every pass), {}",
            sampling(&self.cfg)
        )
    }
    fn passes(
        &mut self,
        runner: &Runner,
        inputs: &Inputs,
        passes: &[usize],
    ) -> Result<Option<Vec<PassFigure>>> {
        let counter = &mut self.counter;
        let perf_err =
            |e: std::io::Error| Error::Runtime(format!("reading the cycle counter: {e}"));
        run_passes(runner, inputs, passes, self.ghz, |run| {
            counter.reset().map_err(perf_err)?;
            let t0 = tsc_start();
            counter.enable().map_err(perf_err)?;
            run();
            counter.disable().map_err(perf_err)?;
            let t = tsc_end() - t0;
            Ok((counter.read().map_err(perf_err)?, t))
        })
        .map(Some)
    }
}

mod jit {
    //! The chain loop around a kernel, assembled with dynasmrt.

    use super::Chain;
    use crate::error::{Error, Result};
    use dynasmrt::{dynasm, x64::Assembler, DynasmApi, DynasmLabelApi, ExecutableBuffer};

    /// `loop(first_array, end, mask)`.
    type Entry = unsafe extern "sysv64" fn(*mut i32, *const i32, u64);

    /// What runs on each array.
    pub(super) enum Inner<'a> {
        /// Kernel bytes, inlined.
        Inline(&'a [u8]),
        /// The address of an `extern "sysv64" fn(*mut i32)`, called with rdi saved around it.
        Call(u64),
    }

    pub(super) struct ChainJit {
        _code: ExecutableBuffer,
        entry: Entry,
    }

    impl ChainJit {
        /// Assembles, for arrays of `n` i32 (`1..=8`):
        ///
        /// ```text
        ///     push rbx, rbp, r12-r15; push mask; push end
        /// lp: <kernel>                      ; rdi = this array; or, for a function:
        ///                                   ; push rdi; mov rax, f; call rax; pop rdi
        ///     mov eax, [rdi]; mov ecx, [rdi+4]; or eax, ecx; ... (all n outputs, each
        ///                                   ; read by a plain 4-byte load, see below)
        ///     and eax, [rsp+8]              ; 0, unknown to the CPU in advance
        ///     lea rdi, [rdi + rax + 4n]     ; next array, after this one's outputs
        ///     cmp rdi, [rsp]; jb lp
        ///     pop ...; ret
        /// ```
        ///
        /// With [`Chain::Independent`] the outputs are not read: `add rdi, 4n` goes to the
        /// next array, and the core may start the next call before this one ends.
        ///
        /// Each output is read back with a plain `mov`, as C code reading `buf[k]` does, not
        /// folded into the `or` (`or eax, [rdi+4]`): on this project's Zen 4 the folded form
        /// made every kernel that stores from general-purpose registers 1.5x slower in the
        /// chain (sort4's cmov network 19.2 reference cycles per call against 12.8) while
        /// kernels that store from xmm registers did not change, so it ranked kernels by how
        /// the caller reads their outputs (BENCHMARKS.md, "Two timing paths agree").
        pub(super) fn new(inner: Inner<'_>, n: usize, chain: Chain) -> Result<ChainJit> {
            let mut ops = Assembler::new()
                .map_err(|e| Error::Runtime(format!("cannot map memory for the JIT: {e}")))?;
            let stride = 4 * n as i32;
            let start = ops.offset();
            dynasm!(ops
                ; .arch x64
                ; push rbx
                ; push rbp
                ; push r12
                ; push r13
                ; push r14
                ; push r15
                ; push rdx
                ; push rsi
                ; lp:
            );
            match inner {
                Inner::Inline(code) => ops.extend(code),
                // Eight pushes plus the return address: rsp is 16-byte aligned after the push
                // of rdi, as the SysV ABI wants at a call.
                Inner::Call(f) => dynasm!(ops
                    ; .arch x64
                    ; push rdi
                    ; mov rax, QWORD f as i64
                    ; call rax
                    ; pop rdi
                ),
            }
            if chain == Chain::Dependent {
                dynasm!(ops
                    ; .arch x64
                    ; mov eax, DWORD [rdi]
                );
                for k in 1..n as i32 {
                    dynasm!(ops
                        ; .arch x64
                        ; mov ecx, DWORD [rdi + 4 * k]
                        ; or eax, ecx
                    );
                }
                dynasm!(ops
                    ; .arch x64
                    ; and eax, DWORD [rsp + 8]
                    ; lea rdi, [rdi + rax + stride]
                );
            } else {
                dynasm!(ops
                    ; .arch x64
                    ; add rdi, stride
                );
            }
            dynasm!(ops
                ; .arch x64
                ; cmp rdi, QWORD [rsp]
                ; jb <lp
                ; add rsp, 16
                ; pop r15
                ; pop r14
                ; pop r13
                ; pop r12
                ; pop rbp
                ; pop rbx
                ; ret
            );
            let buffer = ops
                .finalize()
                .map_err(|_| Error::Runtime("cannot make the JIT code executable".into()))?;
            // SAFETY: the code at `start` is the SysV function assembled above.
            let entry: Entry = unsafe { std::mem::transmute(buffer.ptr(start)) };
            Ok(ChainJit {
                _code: buffer,
                entry,
            })
        }

        /// Runs the kernel over every array of `buf` (a whole number of arrays).
        pub(super) fn run(&self, buf: &mut [i32], mask: i32) {
            let range = buf.as_mut_ptr_range();
            // SAFETY: the loop visits each array of `buf` once (mask is 0 at run time, so the
            // stride is exactly one array) and the kernel touches only `[rdi + 4k]` inside the
            // array (checked statically by the caller of `Runner::kernel`); callee-saved
            // registers are restored by the loop.
            unsafe { (self.entry)(range.start, range.end, mask as u32 as u64) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_batch(n: usize) -> (Vec<i32>, Vec<i32>) {
        let mut input = vec![0; n * 200];
        Inputs {
            n,
            per_pass: 200,
            seed: 5,
        }
        .fill(0, &mut input);
        let mut want = input.clone();
        for a in want.chunks_mut(n) {
            a.sort_unstable();
        }
        (input, want)
    }

    #[test]
    fn every_runner_sorts_the_whole_batch() {
        use crate::isa::{encode, Reg};
        for n in 2..=5 {
            let (input, want) = sorted_batch(n);
            let net = crate::game::network::classic_comparators(n).unwrap();
            let prog = crate::game::network::network_kernel(&Reg::ALL, n, net);
            let runners = [
                Runner::kernel(&encode(&prog), ModelState::default(), n).unwrap(),
                Runner::sort_unstable(n).unwrap(),
                Runner::minmax_network(n).unwrap().unwrap(),
            ];
            // Each in the dependent loop and its independent twin: every array, once.
            for r in &runners {
                let twin = r.independent().unwrap();
                assert_eq!(
                    (r.chain(), twin.chain()),
                    (Chain::Dependent, Chain::Independent)
                );
                assert_eq!(twin.model(), r.model());
                for r in [r, &twin] {
                    let mut buf = input.clone();
                    r.run(&mut buf);
                    assert_eq!(buf, want, "n = {n}, {:?}", r.chain());
                }
            }
            for empty in [Runner::empty(n).unwrap(), Runner::empty_call(n).unwrap()] {
                for r in [&empty, &empty.independent().unwrap()] {
                    let mut buf = input.clone();
                    r.run(&mut buf);
                    assert_eq!(buf, input);
                }
            }
        }
    }

    #[test]
    fn perf_is_refused_in_one_line_where_counters_are_missing() {
        match hardware_counters() {
            Ok(()) => {} // a machine with counters: nothing to refuse
            Err(why) => {
                assert!(
                    why.starts_with("hardware cycle counters are unavailable: perf_event_open"),
                    "{why}"
                );
                assert!(!why.contains('\n'));
                let err = PerfMeter::new(SampleConfig::default()).err().unwrap();
                assert_eq!(err.to_string(), why);
            }
        }
    }
}
