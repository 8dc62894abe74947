//! Tasks past n = 5 (issue 12): sort2 and sort6-8, their proof sets, the 0-1 search vectors,
//! callee-saved scratch registers, the classic network as incumbent, and the large
//! neighbourhood search that takes sort7 and sort8 below AlphaDev's lengths.

mod common;

use common::{gcc_run, have, stderr, stdout, superopt, write};
use std::sync::{atomic::AtomicBool, Arc};
use superopt::asm::{parse_file, Syntax};
use superopt::game::network::{classic_comparators, network_kernel};
use superopt::game::SortGame;
use superopt::isa::Insn;
use superopt::oracle::{self, NativeConfig, Status};
use superopt::search::{lns, Action, Budget, Environment, Shared, StopReason};
use superopt::task::Task;

/// A kernel superopt found, from tests/kernels.
fn found(name: &str) -> Vec<Insn> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kernels")
        .join(name);
    let task = Task::load(&name[..5]).unwrap();
    parse_file(&path, Syntax::Att)
        .unwrap()
        .to_game(task.n)
        .unwrap()
}

/// The game's actions for the core of a whole kernel (loads first, stores last).
fn actions(g: &SortGame, kernel: &[Insn]) -> Vec<Action> {
    let n = g.task().n;
    kernel[n..kernel.len() - n]
        .iter()
        .map(|i| {
            g.moves()
                .iter()
                .position(|m| m == i)
                .unwrap_or_else(|| panic!("{i} is not a move")) as Action
        })
        .collect()
}

/// A search of `expansions` expansions (deterministic with one worker) seeded with the
/// classic network; returns the best cost and the shared state.
fn lns_run(task: &Task, expansions: u64) -> (SortGame, Shared, StopReason) {
    let g = SortGame::new(task);
    let shared = Shared::new(
        Budget {
            time: std::time::Duration::from_secs(600),
            target: None,
            max_expansions: Some(expansions),
        },
        Arc::new(AtomicBool::new(false)),
    );
    let seed = g
        .network_actions()
        .expect("every built-in task has a network");
    let mut s = g.initial();
    for &a in &seed {
        s = g.step(&s, a).unwrap();
    }
    shared.seed(g.solution_cost(&s).unwrap(), &seed);
    let r = lns(&g, 1.5, &shared);
    (g, shared, r)
}

/// `superopt search ARGS --json --log-dir DIR`: asserts exit 0 and returns the JSON report.
fn search_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.extend(["--json", "--log-dir", dir.to_str().unwrap()]);
    let o = superopt(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn quick() -> NativeConfig {
    NativeConfig {
        random: 1_000,
        seed: 0,
    }
}

#[test]
fn every_task_proves_on_every_weak_ordering_and_searches_on_fewer_past_five() {
    // Ordered Bell numbers (OEIS A000670).
    for (n, orderings, search) in [
        (2, 3, 3),
        (3, 13, 13),
        (4, 75, 75),
        (5, 541, 541),
        (6, 4_683, 63 + 256),
        (7, 47_293, 127 + 256),
        (8, 545_835, 255 + 256),
    ] {
        let task = Task::load(&format!("sort{n}")).unwrap();
        assert_eq!(task.n, n);
        assert_eq!(task.test_vectors().len(), orderings, "sort{n}");
        assert_eq!(task.search_vectors().len(), search, "sort{n}");
        assert_eq!(task.zero_one_search, n > 5);
        assert_eq!(SortGame::new(&task).is_exact(), n <= 5);
    }
    // The 256 permutations are distinct and follow the 63 0-1 vectors.
    let v = Task::load("sort6").unwrap().search_vectors();
    let mut perms = v.inputs[63..].to_vec();
    assert!(perms.iter().all(|p| {
        let mut s = p.clone();
        s.sort_unstable();
        s == [0, 1, 2, 3, 4, 5]
    }));
    perms.sort();
    perms.dedup();
    assert_eq!(perms.len(), 256);
}

#[test]
fn the_classic_network_is_every_search_s_first_incumbent() {
    for (n, len) in [(2, 8), (3, 18), (4, 28), (5, 46), (6, 60), (7, 78), (8, 92)] {
        let task = Task::load(&format!("sort{n}")).unwrap();
        assert_eq!(task.reference.network, Some(len));
        let g = SortGame::new(&task);
        let seed = g.network_actions().unwrap();
        assert_eq!(seed.len(), 4 * classic_comparators(n).unwrap().len());
        let program = g.program(&seed).unwrap();
        assert_eq!(program.len(), len, "sort{n}");
        assert_eq!(
            program,
            network_kernel(&task.scratch, n, classic_comparators(n).unwrap())
        );
        oracle::prove(&task, &program).unwrap();
    }
    // sort8's network needs a ninth register for the exchange's copy: callee-saved ebx.
    let task = Task::load("sort8").unwrap();
    let program = network_kernel(&task.scratch, 8, classic_comparators(8).unwrap());
    assert!(program.iter().any(|i| i.intel().contains("ebx")));
}

#[test]
fn searches_past_five_print_a_verified_kernel_no_longer_than_the_network_at_once() {
    for (task, network) in [("sort2", 8), ("sort6", 60), ("sort7", 78), ("sort8", 92)] {
        let dir = tempfile::tempdir().unwrap();
        let v = search_json(dir.path(), &[task, "--budget", "1s", "--threads", "1"]);
        assert_eq!(v["verified"], true, "{task}");
        let len = v["length"].as_u64().unwrap();
        assert!(len <= network, "{task}: {len}");
        let checks = v["checks"].to_string();
        assert!(
            checks.contains("weak orderings of") && checks.contains("a proof for all inputs"),
            "{checks}"
        );
    }
}

#[test]
fn lns_takes_sort5_from_the_network_to_42() {
    let task = Task::load("sort5").unwrap();
    let (_, shared, _) = lns_run(&task, 20_000);
    assert_eq!(shared.best(), 42);
}

#[test]
fn lns_beats_alphadev_on_sort7_and_sort8() {
    // AlphaDev's released kernels: 76 and 91 instructions (body).
    for (name, expansions, want) in [("sort8", 8_000, 90), ("sort7", 12_000, 75)] {
        let task = Task::load(name).unwrap();
        let (g, shared, _) = lns_run(&task, expansions);
        assert!(shared.best() <= want, "{name}: {}", shared.best());
        let best = shared.found().into_iter().min_by_key(|f| f.cost).unwrap();
        let program = g.program(&best.actions).unwrap();
        assert_eq!(program.len() as u32, shared.best());
        let verdict = oracle::verify_program(&task, &program, &quick()).unwrap();
        assert_eq!(verdict.status, Status::Verified, "{:?}", verdict.reason);
        // The candidates reached the proof on every weak ordering, and all passed it.
        let (passed, failed) = g.proof_counts().unwrap();
        assert!(passed >= 2, "{passed}");
        assert_eq!(failed, 0);
    }
}

#[test]
fn the_lower_bound_is_admissible_along_known_kernels_past_five() {
    let mut kernels = vec![
        ("sort6", found("sort6_found57.s")),
        ("sort7", found("sort7_found74.s")),
        ("sort8", found("sort8_found90.s")),
    ];
    for n in 6..=8 {
        let task = Task::load(&format!("sort{n}")).unwrap();
        let net = network_kernel(&task.scratch, n, classic_comparators(n).unwrap());
        kernels.push((["sort6", "sort7", "sort8"][n - 6], net));
    }
    for (name, kernel) in kernels {
        let task = Task::load(name).unwrap();
        let g = SortGame::new(&task);
        let total = kernel.len() as u32;
        let mut s = g.initial();
        assert!(g.cost(&s) + g.lower_bound(&s) <= total);
        for a in actions(&g, &kernel) {
            s = g.step(&s, a).unwrap_or_else(|| panic!("{name}: refused"));
            assert!(
                g.cost(&s) + g.lower_bound(&s) <= total,
                "{name}: bound {} + {} over {total}",
                g.cost(&s),
                g.lower_bound(&s)
            );
        }
        assert_eq!(g.solution_cost(&s), Some(total), "{name}");
    }
}

#[test]
fn zero_one_candidates_are_kernels_only_after_the_proof() {
    // sort5 searched on its 31 0-1 vectors alone: many programs sort 0s and 1s but not all
    // inputs. They reach the proof, fail it, and never become the incumbent.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/sort5.toml"),
    )
    .unwrap()
    .replace("name = \"sort5\"", "name = \"sort5-01\"")
    .replace(
        "budget = \"10m\"",
        "budget = \"10m\"\nvectors = \"zero-one\"\npermutations = 0",
    );
    let task = Task::parse(&text, std::path::Path::new("sort5-01.toml")).unwrap();
    assert_eq!(task.search_vectors().len(), 31);
    let (g, shared, _) = lns_run(&task, 3_000);
    let (passed, failed) = g.proof_counts().unwrap();
    assert!(failed > 100, "{failed}");
    assert!(passed >= 1);
    for f in shared.found() {
        let program = g.program(&f.actions).unwrap();
        oracle::prove(&task, &program).unwrap();
    }
}

#[test]
fn callee_saved_scratch_runs_between_push_and_pop_and_only_where_listed() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels/sort8_found90.s");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("%ebx"));
    let o = superopt(&[
        "verify",
        "sort8",
        path.to_str().unwrap(),
        "--random",
        "1000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with(&format!(
        "verified: {} sorts 8 i32 for all inputs (90 instructions)\n",
        path.display()
    )));
    assert!(
        out.contains("  - native: the body ran between push and pop of callee-saved rbx, as the exported function runs it (body length 90, 92 with them)\n"),
        "{out}"
    );
    assert!(out.contains("  - proved on all 545835 weak orderings of 8 inputs by the emulator (mov/cmp/cmov only: a proof for all inputs)\n"));
    // The same kernel for a task that does not list ebx.
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/sort8.toml"),
    )
    .unwrap()
    .replace("\"ebx\", \"r12d\"", "\"r12d\"");
    let t = write(dir.path(), "sort8-r12.toml", &toml);
    let o = superopt(&["verify", &t, path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        format!(
            "rejected: {}: clobbers callee-saved rbx (line 11)\n",
            path.display()
        )
    );
}

/// A C program that checks `NAME` (8 elements) against insertion sort on every tuple over
/// {0..3}^8 (65,536, every weak ordering of at most 4 values), the 8 extremes in every
/// rotation, and 100,000 random tuples, and prints the count.
const C_TEST8: &str = r#"
#include <stdio.h>
#include <stdint.h>
void NAME(int32_t *buf);

static long passed, total;

static void check(const int32_t *in) {
    int32_t got[10], want[8];
    got[0] = 0x5AFE; got[9] = 0x5AFE;
    for (int k = 0; k < 8; k++) got[k + 1] = want[k] = in[k];
    for (int i = 1; i < 8; i++)
        for (int j = i; j > 0 && want[j - 1] > want[j]; j--) {
            int32_t t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
        }
    NAME(got + 1);
    total++;
    int ok = got[0] == 0x5AFE && got[9] == 0x5AFE;
    for (int k = 0; k < 8; k++) ok &= got[k + 1] == want[k];
    if (ok) passed++;
}

int main(void) {
    for (int code = 0; code < 1 << 16; code++) {
        int32_t v[8];
        for (int k = 0; k < 8; k++) v[k] = (code >> (2 * k)) & 3;
        check(v);
    }
    const int32_t ext[8] = {INT32_MIN, INT32_MIN + 1, -2, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
    for (int r = 0; r < 8; r++) {
        int32_t v[8];
        for (int k = 0; k < 8; k++) v[k] = ext[(k * 3 + r) % 8];
        check(v);
    }
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        int32_t v[8];
        for (int k = 0; k < 8; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            v[k] = (int32_t)(uint32_t)(s >> 32);
            if (i % 2) v[k] %= 5;
        }
        check(v);
    }
    printf("passed %ld of %ld\n", passed, total);
    return passed == total ? 0 : 1;
}
"#;

#[test]
fn a_sort8_kernel_with_callee_saved_scratch_exports_and_links() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels/sort8_found90.s");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let o = superopt(&[
        "export",
        path.to_str().unwrap(),
        "--task",
        "sort8",
        "--format",
        "gas",
        "-o",
        &out_dir,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("GNU as assembled symbol sort8 to 90 instructions + ret, with a push and pop of 1 callee-saved register;"),
        "{}",
        stdout(&o)
    );
    let s = std::fs::read_to_string(dir.path().join("sort8.S")).unwrap();
    assert!(s.contains(
        " * Length: 90 instructions in the body (ret excluded), 92 with the push and pop of rbx\n"
    ));
    assert!(s.contains("sort8:\n    push %rbx\n"));
    assert!(s.contains("    pop %rbx\n    ret\n"));
    if !have("gcc") {
        return;
    }
    let c = write(dir.path(), "t.c", &C_TEST8.replace("NAME", "sort8"));
    let exe = dir.path().join("t");
    let o = gcc_run(
        &exe,
        &[std::path::Path::new(&c), &dir.path().join("sort8.S")],
    );
    assert_eq!(stdout(&o), "passed 165544 of 165544\n");
}

#[test]
fn no_incumbent_makes_the_search_find_the_network_length_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "sort4",
            "--strategy",
            "astar",
            "--threads",
            "1",
            "--target",
            "28",
        ];
        args.extend_from_slice(extra);
        let v = search_json(dir.path(), &args);
        assert_eq!(v["length"], 28);
        assert_eq!(v["stop_reason"], "target");
        let log: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(v["log"].as_str().unwrap()).unwrap())
                .unwrap();
        (v["programs_explored"].as_u64().unwrap(), log)
    };
    // The network is 28 already: the first improvement, found after 0 programs.
    let (_, log) = run(&[]);
    assert_eq!(log["config"]["incumbent"], "network");
    assert_eq!(log["timeline"][0]["length"], 28);
    assert_eq!(log["timeline"][0]["programs_explored"], 0);
    let (explored, log) = run(&["--no-incumbent"]);
    assert_eq!(log["config"]["incumbent"], "none");
    assert!(explored > 0);
    assert!(log["timeline"][0]["programs_explored"].as_u64().unwrap() > 0);
}

#[test]
fn without_the_incumbent_sort3_and_sort4_search_as_before() {
    // The example logs' commands (search-logs/README.md): the same programs explored as
    // before tasks past n = 5 existed, so the search on n <= 5 is unchanged.
    let dir = tempfile::tempdir().unwrap();
    for (task, target, explored) in [("sort3", "17", 277), ("sort4", "28", 8_134)] {
        let v = search_json(
            dir.path(),
            &[
                task,
                "--budget",
                "120s",
                "--seed",
                "1",
                "--target",
                target,
                "--threads",
                "1",
                "--evaluator",
                "heuristic",
                "--no-incumbent",
            ],
        );
        assert_eq!(v["programs_explored"], explored, "{task}");
        assert_eq!(v["length"].to_string(), target);
    }
}

#[test]
fn all_weak_orderings_as_search_vectors_stop_at_seven_elements() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/sort8.toml"),
    )
    .unwrap()
    .replace("budget = \"10m\"", "budget = \"10m\"\nvectors = \"all\"");
    assert_eq!(
        Task::parse(&text, std::path::Path::new("s8.toml"))
            .unwrap_err()
            .to_string(),
        "s8.toml: search.vectors: \"all\" is not supported for n = 8 (too many weak orderings to search on; the proof still uses them all): use \"zero-one\""
    );
}

#[test]
fn export_refuses_a_task_file_that_differs_from_the_log_s_task() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let v = search_json(&logs, &["sort8", "--budget", "1s", "--threads", "1"]);
    let log = v["log"].as_str().unwrap().to_string();
    // Same name, ebx no longer scratch: the log's kernel (the network, whose copy is in
    // ebx) was verified for another task.
    let toml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/sort8.toml"),
    )
    .unwrap()
    .replace("\"ebx\", \"r12d\"", "\"r12d\"");
    let t = write(dir.path(), "sort8.toml", &toml);
    let out = dir.path().join("out");
    let o = superopt(&["export", &log, "--task", &t, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        format!("error: --task {t} differs from the log's task sort8 (n, element type, scratch registers or opcodes); export the log without --task, or the kernel as a .s file with --task\n")
    );
    assert!(!out.exists());
}
