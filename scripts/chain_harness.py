#!/usr/bin/env python3
"""Times kernels outside superopt, to check `superopt bench` by a second path (issue 13).

Each kernel is exported with `superopt export --format c` (which verifies it again), then
scripts/chain_harness.c calls the exported functions from C in a dependent and an independent
chain (see that file) and prints reference cycles per call, call overhead included. Usage:

    python3 scripts/chain_harness.py sort3 \\
        network=tests/kernels/sort3_network.s \\
        latency=search-logs/examples/sort3-latency-seed0.json \\
        shortest=search-logs/examples/sort3-mcts-seed1.json

A kernel is NAME=PATH: a search log (.json, its best kernel) or an assembly file (.s, AT&T;
NAME=intel:PATH for Intel syntax; PATH@TASK checks the file against TASK instead, e.g. a cmov
kernel @sort3 beside the kernels of sort3-avx2). NAME must be a C identifier. i32 tasks only. gcc builds the
harness with -O2; every step runs under a time limit. `--bin` picks the superopt binary.
"""
import argparse, os, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("task")
p.add_argument("kernels", nargs="+", metavar="NAME=PATH")
p.add_argument("--bin", default="target/release/superopt")
a = p.parse_args()

here = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r.stdout


n = None
with tempfile.TemporaryDirectory(prefix="chain-harness") as d:
    names = []
    for spec in a.kernels:
        name, _, path = spec.partition("=")
        if not name.isidentifier() or not path:
            sys.exit(f"expected NAME=PATH with NAME a C identifier, got {spec!r}")
        syntax = "att"
        if path.startswith("intel:"):
            syntax, path = "intel", path[len("intel:"):]
        # PATH@TASK: an assembly file checked against another task of the same n (a cmov
        # kernel beside a vector task's kernels, which export checks against its own moves).
        path, _, task = path.partition("@")
        cmd = [a.bin, "export", path, "--format", "c", "--name", name, "-o", d]
        if not path.endswith(".json"):
            cmd += ["--task", task or a.task, "--syntax", syntax]
        run(cmd, 300)
        names.append(name)
    # n from the task, as `superopt tasks` lists it (or a task file's own n).
    for line in run([a.bin, "tasks"], 60).splitlines()[1:]:
        cols = line.split()
        if cols and cols[0] == a.task:
            n = int(cols[1])
    if n is None:
        import tomllib
        with open(a.task, "rb") as f:
            n = tomllib.load(f)["n"]
    with open(os.path.join(d, "kernels.h"), "w") as f:
        f.write(f"#define N {n}\n")
        for name in names:
            f.write(f'#include "{name}.h"\n')
        f.write("#define KERNELS " + " ".join(f"X({m})" for m in names) + "\n")
    exe = os.path.join(d, "harness")
    run(["gcc", "-O2", "-Wall", "-Werror", "-I", d, "-o", exe,
         os.path.join(here, "chain_harness.c")] + [os.path.join(d, f"{m}.S") for m in names], 300)
    out = run(["taskset", "-c", "0", exe] if os.path.exists("/usr/bin/taskset") else [exe], 600)
    print(f"{a.task}: reference cycles per call (5th percentile of 1000 passes of 1000 calls; call overhead included)")
    print(out, end="")
