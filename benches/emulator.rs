//! Emulator throughput: instruction applications x test vectors per second, on the CPU state
//! the search plays on: every weak ordering for sort3/4/5 (13/75/541 test vectors), the 0-1
//! vectors plus 256 permutations for sort6/7/8 (319/383/511); and on sort8's proof set
//! (545,835). Run with `cargo bench --bench emulator`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use superopt::game::CpuState;
use superopt::isa::{Cond, Insn, Reg};
use superopt::Task;

fn bench(c: &mut Criterion) {
    for (name, proof) in [
        ("sort3", false),
        ("sort4", false),
        ("sort5", false),
        ("sort6", false),
        ("sort7", false),
        ("sort8", false),
        ("sort8", true),
    ] {
        let task = Task::load(name).unwrap();
        let tv = if proof {
            task.test_vectors()
        } else {
            task.search_vectors()
        };
        let name = if proof {
            format!("{name}-proof")
        } else {
            name.to_string()
        };
        let mut s = CpuState::new(&tv, task.columns());
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
