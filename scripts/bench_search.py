#!/usr/bin/env python3
"""Runs `superopt search` over seeds and strategies and prints a Markdown table for
BENCHMARKS.md: time and programs explored to first reach each length of interest, best length,
total programs explored. Usage:

    python3 scripts/bench_search.py sort3 --budget 60s --target 17 --lengths 18 17
    python3 scripts/bench_search.py sort5 --budget 10m --target 42 --lengths 46 43 42
    python3 scripts/bench_search.py sort7 --budget 5m --lengths 78 76 75 74 --strategies lns --seeds 1

    python3 scripts/bench_search.py sort4 --budget 60s --target 28 --lengths 28 \
        --guides nets/sort4.safetensors none heuristic

Each run uses the release binary with default threads (all cores) and writes its log to a
temporary folder. `--guides` replaces `--strategies`; `--no-incumbent` times the search without the classic network as its first incumbent. Each guide is `none` (uniform priors),
`heuristic`, `astar`, a net checkpoint path (the net's priors times the heuristic's, the
default), `netalone:PATH` (that net's priors alone, `--net-prior net`) or `netvalue:PATH`
(that net with `--net-value net`); the table adds the median over the seeds.
"""
import argparse, json, subprocess, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("task")
p.add_argument("--budget", required=True)
p.add_argument("--target", type=int)
p.add_argument("--lengths", type=int, nargs="+", required=True)
p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
p.add_argument("--strategies", nargs="+", default=["mcts", "astar"])
p.add_argument("--guides", nargs="+")
p.add_argument("--threads", type=int)
p.add_argument("--bin", default="target/release/superopt")
p.add_argument("--no-incumbent", action="store_true",
               help="pass --no-incumbent: start without the classic network, to time the search alone")
a = p.parse_args()

cols = " | ".join(f"to {l}: s (programs)" for l in a.lengths)
print(f"| task | strategy | seed | {cols} | best | explored | elapsed s |")
print("|---|---|---|" + "---|" * len(a.lengths) + "---|---|---|")
def flags(variant):
    if a.guides is None:
        return ["--strategy", variant]
    if variant == "none":
        return ["--net", "none"]
    if variant == "heuristic":
        return ["--evaluator", "heuristic"]
    if variant == "astar":
        return ["--strategy", "astar"]
    if variant.startswith("netvalue:"):
        return ["--net", variant[len("netvalue:"):], "--net-value", "net"]
    if variant.startswith("netalone:"):
        return ["--net", variant[len("netalone:"):], "--net-prior", "net"]
    return ["--net", variant]

import statistics
for strategy in (a.guides or a.strategies):
    hits = {l: [] for l in a.lengths}
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as d:
            cmd = [a.bin, "search", a.task, "--budget", a.budget, "--seed", str(seed),
                   "--json", "--log-dir", d] + flags(strategy)
            if a.target is not None:
                cmd += ["--target", str(a.target)]
            if a.threads is not None:
                cmd += ["--threads", str(a.threads)]
            if a.no_incumbent:
                cmd += ["--no-incumbent"]
            out = subprocess.run(cmd, capture_output=True, text=True)
            r = json.loads(out.stdout)
            log = json.load(open(r["log"]))
            cells = []
            for l in a.lengths:
                hit = next((i for i in log["timeline"] if i["length"] <= l), None)
                cells.append(f"{hit['found_at_s']:.2f} ({hit['programs_explored']})" if hit else "-")
                hits[l].append((hit["found_at_s"], hit["programs_explored"]) if hit else None)
            best = r["length"] if r["verified"] else "none"
            print(f"| {a.task} | {strategy} | {seed} | " + " | ".join(cells)
                  + f" | {best} | {r['programs_explored']} | {r['elapsed_s']:.1f} |", flush=True)
    for label, stat in (("**median**", statistics.median), ("mean", statistics.mean)):
        row = []
        for l in a.lengths:
            got = hits[l]
            if all(g is not None for g in got):
                row.append(f"{stat(g[0] for g in got):.2f} ({int(stat(g[1] for g in got))})")
            else:
                row.append(f"{sum(g is not None for g in got)}/{len(got)} reached")
        print(f"| {a.task} | {strategy} | {label} | " + " | ".join(row) + " | | | |", flush=True)
