//! Emulator throughput: instruction applications x test vectors per second, on the CPU state
//! of sort3/4/5 (13/75/541 test vectors). Run with `cargo bench --bench emulator`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use superopt::game::CpuState;
use superopt::isa::{Cond, Insn, Reg};
use superopt::Task;

fn bench(c: &mut Criterion) {
    for name in ["sort3", "sort4", "sort5"] {
        let task = Task::load(name).unwrap();
        let tv = task.test_vectors();
        let mut s = CpuState::new(&tv, 8);
        for k in 0..task.n {
            s.apply(Insn::Load {
                dst: Reg::from_index(k),
                slot: k as u8,
            })
            .unwrap();
        }
        // One compare-exchange: 4 instruction applications.
        let body = [
            Insn::Mov {
                dst: Reg::R11d,
                src: Reg::Eax,
            },
            Insn::Cmp {
                a: Reg::Eax,
                b: Reg::Ecx,
            },
            Insn::Cmov {
                cc: Cond::G,
                dst: Reg::Eax,
                src: Reg::Ecx,
            },
            Insn::Cmov {
                cc: Cond::G,
                dst: Reg::Ecx,
                src: Reg::R11d,
            },
        ];
        let mut g = c.benchmark_group("emulator");
        g.throughput(Throughput::Elements((body.len() * tv.len()) as u64));
        g.bench_function(format!("{name}/compare-exchange"), |b| {
            b.iter(|| {
                let mut st = s.clone();
                for &i in &body {
                    st.apply(i).unwrap();
                }
                st
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
