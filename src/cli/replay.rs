//! `superopt replay <log>`: how a saved search got to its kernel — the principal variation
//! move by move with visit counts, values, priors and the top alternatives, the search's
//! statistics by depth, the timeline of improvements; optionally the top of the tree as
//! Graphviz DOT (`--dot`) and best length against time as a PNG (`--plot`).

use crate::game::{Objective, SortGame};
use crate::log::SearchLog;
use crate::search::{Environment, TreeSnapshot};
use crate::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to show besides the text report.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Alternatives shown at each depth of the principal variation, and children per node in
    /// the DOT graph.
    pub top: usize,
    /// Write the top of the tree as Graphviz DOT here.
    pub dot: Option<PathBuf>,
    /// Depth of the DOT graph (moves from the initial state).
    pub dot_depth: usize,
    /// Write best length against time as a PNG here (the name must end in `.png`: see
    /// [`crate::plot::check_png_name`]).
    pub plot: Option<PathBuf>,
}

/// The principal variation of a log's tree, as the kernel it spells.
#[derive(Clone, Debug, PartialEq)]
pub struct PrincipalVariation {
    /// Tree node indices, the root excluded.
    pub nodes: Vec<u32>,
    /// The moves' action indices.
    pub actions: Vec<crate::search::Action>,
    /// The whole program the moves make (loads, the moves, the stores) in AT&T syntax, when
    /// they end in a solution of the log's task.
    pub program_att: Option<Vec<String>>,
}

/// The principal variation of `log`'s tree (see [`TreeSnapshot::principal_variation`]),
/// with the kernel it spells when the log's task can be loaded (see
/// [`super::search::log_task`]; `path` is where the log was read from) and its move table is
/// the one the log was written with. `None` when the log has no tree.
pub fn principal_variation(log: &SearchLog, path: &Path) -> Option<PrincipalVariation> {
    let tree = log.tree.as_ref()?;
    let nodes = tree.principal_variation();
    let actions: Vec<crate::search::Action> = nodes
        .iter()
        .filter_map(|&i| tree.nodes[i as usize].action)
        .collect();
    let program_att = game_of(log, path).and_then(|game| {
        if actions.iter().any(|&a| a as usize >= game.num_actions()) {
            return None;
        }
        let p = game.program(&actions)?;
        let p = match game.objective() {
            Objective::Length => p,
            Objective::Latency => crate::game::without_dead_code(&p),
        };
        Some(p.iter().map(|i| i.att_as(game.task().element)).collect())
    });
    Some(PrincipalVariation {
        nodes,
        actions,
        program_att,
    })
}

/// The log's game, when its task loads and its move table matches the log's.
fn game_of(log: &SearchLog, path: &Path) -> Option<SortGame> {
    let task = super::search::log_task(log, path).ok()?;
    let objective = log
        .config
        .get("objective")
        .and_then(|o| serde_json::from_value(o.clone()).ok())
        .unwrap_or_default();
    let game = SortGame::with_objective(&task, objective).with_uarch(log.uarch());
    (log.moves_hash.as_deref() == Some(super::search::moves_hash(&game).as_str())).then_some(game)
}

/// Reads the log at `path` and writes the report to `w` (and the DOT and PNG files asked
/// for). Errors: an unreadable log ([`SearchLog::read`]'s one-line messages), an output that
/// cannot be written, a chart without a font.
pub fn replay(path: &Path, opts: &ReplayOptions, w: &mut dyn std::io::Write) -> Result<()> {
    let log = SearchLog::read(path)?;
    if opts.dot.is_some() && log.tree.is_none() {
        return Err(crate::Error::Log {
            path: path.into(),
            message: "no tree to draw: the log has none (an A* or LNS search, a version 1 log, or --tree-nodes 0)".into(),
        });
    }
    if let Some(plot) = &opts.plot {
        crate::plot::check_png_name("--plot", plot)?;
    }
    for (flag, out) in [("--dot", &opts.dot), ("--plot", &opts.plot)] {
        if let Some(out) = out {
            crate::log::check_output(flag, out)?;
            if crate::log::same_file(out, path) {
                return Err(crate::Error::Runtime(format!(
                    "{flag} {} is the log being replayed",
                    out.display()
                )));
            }
        }
    }
    // Compared once their folders exist, so that `./x` and `x` are one file.
    if let (Some(d), Some(p)) = (&opts.dot, &opts.plot) {
        if crate::log::same_file(d, p) {
            return Err(crate::Error::Runtime(format!(
                "--dot and --plot name the same file: {}",
                d.display()
            )));
        }
    }
    let best_check = log.best.as_ref().map(|b| recheck(&log, path, b));
    let text = report(path, &log, opts, best_check.as_deref());
    w.write_all(text.as_bytes())
        .map_err(|e| crate::Error::io("stdout", e))?;
    // The chart first: it is the one that can fail (no font), and then nothing is written.
    if let Some(png) = &opts.plot {
        plot_timeline(&log, png)?;
        writeln!(w, "wrote {}", png.display()).map_err(|e| crate::Error::io("stdout", e))?;
    }
    if let (Some(dot), Some(tree)) = (&opts.dot, &log.tree) {
        let text = dot_graph(tree, opts.top, opts.dot_depth);
        crate::log::write_atomic_with(dot, |tmp| {
            std::fs::write(tmp, &text).map_err(|e| crate::Error::io(dot, e))
        })?;
        writeln!(w, "wrote {}", dot.display()).map_err(|e| crate::Error::io("stdout", e))?;
    }
    Ok(())
}

/// The logged best kernel checked again by the oracle (a log is only text: it may have been
/// edited), as the report's line about it.
fn recheck(log: &SearchLog, path: &Path, best: &crate::log::LoggedKernel) -> String {
    let task = match super::search::log_task(log, path) {
        Ok(t) => t,
        Err(e) => {
            return format!(
                "the log records it as {}verified; not checked again ({e})",
                if best.verified { "" } else { "not " }
            )
        }
    };
    let kernel = match crate::asm::parse_str(
        &best.program_att.join("\n"),
        crate::asm::Syntax::Att,
        "the log's best kernel",
    ) {
        Ok(k) => k,
        Err(e) => return format!("FAILS: it does not assemble: {e}"),
    };
    // What is shown must be what was checked: one instruction per line, nothing after it.
    if kernel.text.len() != best.program_att.len()
        || kernel
            .text
            .iter()
            .zip(&best.program_att)
            .any(|(t, l)| t != l.trim())
    {
        return "FAILS: its lines are not one instruction each (comments, ';' or line breaks in the log)".into();
    }
    match crate::oracle::verify_kernel(&task, &kernel, &crate::oracle::NativeConfig::default()) {
        Ok(v) if v.status == crate::oracle::Status::Verified => {
            "verified again now (proof on every weak ordering, then the native run)".into()
        }
        Ok(v) if v.status == crate::oracle::Status::ProvedNotRun => format!(
            "proved again now on every weak ordering; {}",
            v.reason.unwrap_or_else(|| "not run".into())
        ),
        Ok(v) => format!(
            "FAILS the oracle now: {}",
            v.reason.unwrap_or_else(|| "not verified".into())
        ),
        Err(e) => format!("not checked again: {e}"),
    }
}

/// The text report.
fn report(path: &Path, log: &SearchLog, opts: &ReplayOptions, best_check: Option<&str>) -> String {
    let mut s = String::new();
    let cfg = &log.config;
    let get = |k: &str| {
        cfg.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let _ = writeln!(
        s,
        "search log {} (format version {}, superopt {})",
        path.display(),
        log.version,
        log.superopt
    );
    let _ = writeln!(
        s,
        "task {} ({}); strategy {}, objective {}, guided by {}; seed {}; {} threads",
        log.task,
        log.task_source,
        get("strategy").unwrap_or("?".into()),
        get("objective").unwrap_or("length".into()),
        get("evaluator").unwrap_or("?".into()),
        log.seed,
        get("threads").unwrap_or("?".into()),
    );
    if get("objective").as_deref() == Some("latency") {
        // The table the tree was costed with (logs without one: Zen 4).
        let table = match cfg.get("uarch") {
            None => "model table AMD Zen 4 (the log names none)".to_string(),
            Some(u) => match serde_json::from_value::<crate::latency::model::Uarch>(u.clone()) {
                Ok(t) => format!("model table {}", t.name()),
                Err(_) => {
                    format!("model table {u} is unknown: the tree is replayed with AMD Zen 4")
                }
            },
        };
        let _ = writeln!(s, "{table}");
    }
    let runs = log.resume.as_ref().map_or(1, |r| r.runs.len().max(1));
    let state = if log.stop_reason == crate::log::RUNNING {
        "a checkpoint: the search was still running".to_string()
    } else {
        format!("stopped: {}", log.stop_reason)
    };
    let _ = writeln!(
        s,
        "started {}; {:.1} s in {} run{}; {state}; {} programs explored{}",
        log.started,
        log.elapsed_s,
        runs,
        if runs == 1 { "" } else { "s" },
        log.programs_explored,
        log.stats
            .as_ref()
            .filter(|st| st.episodes > 0)
            .map_or(String::new(), |st| format!(", {} episodes", st.episodes))
    );
    if let Some(n) = &log.network {
        let _ = writeln!(s, "network: {} ({})", n.path, n.hash);
    }

    // The principal variation.
    match (&log.tree, principal_variation(log, path)) {
        (Some(tree), Some(pv)) => {
            let _ = writeln!(
                s,
                "\nprincipal variation (through the best kernel found, else the most visited child; N visits, V mean value, Q best value, P prior):"
            );
            let _ = writeln!(
                s,
                "{:>5}  {:<24} {:>9} {:>6} {:>6} {:>6}  alternatives (N, Q)",
                "depth", "move", "N", "V", "Q", "P"
            );
            let mut parent = 0usize;
            for (d, &i) in pv.nodes.iter().enumerate() {
                let n = &tree.nodes[i as usize];
                let mut alts: Vec<u32> = tree.nodes[parent]
                    .children
                    .iter()
                    .copied()
                    .filter(|&c| c != i)
                    .collect();
                alts.sort_by_key(|&c| std::cmp::Reverse(tree.nodes[c as usize].visits));
                let alts: Vec<String> = alts
                    .iter()
                    .take(opts.top)
                    .map(|&c| {
                        let a = &tree.nodes[c as usize];
                        format!("{} ({}, {:.3})", a.move_text, a.visits, a.value_max)
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "{:>5}  {:<24} {:>9} {:>6.3} {:>6.3} {:>6.3}  {}",
                    d + 1,
                    n.move_text,
                    n.visits,
                    n.value,
                    n.value_max,
                    n.prior,
                    if alts.is_empty() {
                        "-".to_string()
                    } else {
                        alts.join("; ")
                    }
                );
                parent = i as usize;
            }
            if let Some(cost) = tree.nodes.first().and_then(|r| r.solution) {
                let _ = writeln!(s, "(the best solution through the root costs {cost})");
            }
            match (&pv.program_att, &log.best) {
                (Some(p), Some(best)) => {
                    let same = *p == best.program_att;
                    let _ = writeln!(
                        s,
                        "the principal variation, with the game's loads and stores, is a {}-instruction program; {}",
                        p.len(),
                        if same {
                            "it is the logged best kernel".to_string()
                        } else if best.latency.is_some() {
                            "the logged kernel differs: a latency search picks its kernel by measurement".to_string()
                        } else {
                            format!(
                                "the logged best kernel ({} instructions) differs",
                                best.length
                            )
                        }
                    );
                }
                (Some(p), None) => {
                    let _ = writeln!(
                        s,
                        "the principal variation makes a {}-instruction program; the log has no best kernel",
                        p.len()
                    );
                }
                (None, _) => {
                    let _ = writeln!(
                        s,
                        "(the moves do not end in a solution, or the task's move table is not the log's)"
                    );
                }
            }
        }
        _ => {
            let _ = writeln!(
                s,
                "\nno tree in this log (an A* or LNS search, a version 1 log, or --tree-nodes 0)"
            );
        }
    }
    if let Some(best) = &log.best {
        let _ = writeln!(
            s,
            "\nbest kernel: {} instructions; {}",
            best.program_att.len(),
            best_check.unwrap_or("-")
        );
        for l in &best.program_att {
            let _ = writeln!(s, "    {l}");
        }
    }

    // Statistics.
    if let Some(st) = &log.stats {
        let depths = log.tree.as_ref().map(TreeSnapshot::depths);
        let _ = writeln!(
            s,
            "\nstatistics by depth (moves from the initial state; branching = children kept per expansion):"
        );
        let _ = writeln!(
            s,
            "{:>5} {:>12} {:>10} {:>12}",
            "depth", "expansions", "branching", "tree nodes"
        );
        for (d, &e) in st.expansions_by_depth.iter().enumerate() {
            if e == 0 {
                continue;
            }
            let nodes = depths
                .as_ref()
                .map(|ds| ds.iter().filter(|x| **x == Some(d)).count());
            let _ = writeln!(
                s,
                "{:>5} {:>12} {:>10.2} {:>12}",
                d,
                e,
                st.children_by_depth[d] as f64 / e as f64,
                nodes.map_or("-".into(), |n| n.to_string())
            );
        }
        let total_e: u64 = st.expansions_by_depth.iter().sum();
        let total_c: u64 = st.children_by_depth.iter().sum();
        let _ = writeln!(
            s,
            "all depths: {} expansions, mean branching {:.2}; transposition hits {}; bound prunes {}",
            total_e,
            total_c as f64 / total_e.max(1) as f64,
            st.transposition_hits,
            st.bound_prunes
        );
        if let Some(t) = &log.tree {
            let _ = writeln!(
                s,
                "tree in the log: {} nodes with at least {} visits (of {} held by the search; {} dropped earlier to bound memory)",
                t.nodes.len(),
                t.visit_threshold,
                t.nodes_in_search,
                t.nodes_dropped
            );
        }
    }

    // Timeline.
    let _ = writeln!(s, "\ntimeline of improvements:");
    let _ = writeln!(s, "{:>10} {:>12} {:>7}", "seconds", "programs", "length");
    for i in &log.timeline {
        let _ = writeln!(
            s,
            "{:>10.3} {:>12} {:>7}{}",
            i.found_at_s,
            i.programs_explored,
            i.length,
            i.model_cycles
                .map_or(String::new(), |c| format!("  (model {c:.2} cycles)"))
        );
    }
    if log.timeline.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    s
}

/// Graphviz DOT of the top `depth` levels of `tree`, each node's `top` most visited children
/// (and the principal variation, drawn bold red).
pub fn dot_graph(tree: &TreeSnapshot, top: usize, depth: usize) -> String {
    let pv: std::collections::HashSet<u32> = tree.principal_variation().into_iter().collect();
    let mut s = String::from(
        "digraph search {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
    );
    let label = |i: u32| {
        let n = &tree.nodes[i as usize];
        let head = if i == 0 {
            "initial state".to_string()
        } else {
            n.move_text.replace('"', "\\\"")
        };
        let sol = n
            .solution
            .map_or(String::new(), |c| format!("\\nbest below: {c}"));
        format!(
            "{head}\\nN={} Q={:.3} P={:.3}{sol}",
            n.visits, n.value_max, n.prior
        )
    };
    let _ = writeln!(s, "  n0 [label=\"{}\", style=bold];", label(0));
    let mut frontier = vec![0u32];
    for _ in 0..depth {
        let mut next = Vec::new();
        for &p in &frontier {
            let mut kids: Vec<u32> = tree.nodes[p as usize].children.clone();
            kids.sort_by_key(|&c| std::cmp::Reverse(tree.nodes[c as usize].visits));
            let mut shown: Vec<u32> = kids.iter().copied().take(top).collect();
            if let Some(&c) = kids.iter().find(|c| pv.contains(c)) {
                if !shown.contains(&c) {
                    shown.push(c);
                }
            }
            for c in shown {
                let on_pv = pv.contains(&c) && (p == 0 || pv.contains(&p));
                let style = if on_pv {
                    ", color=red, penwidth=2.5"
                } else {
                    ""
                };
                let _ = writeln!(s, "  n{c} [label=\"{}\"{style}];", label(c));
                let _ = writeln!(
                    s,
                    "  n{p} -> n{c} [label=\"{}\"{style}];",
                    tree.nodes[c as usize].visits
                );
                next.push(c);
            }
        }
        frontier = next;
    }
    s.push_str("}\n");
    s
}

/// Best length (or model cycles under latency) against seconds, as a step line.
fn plot_timeline(log: &SearchLog, png: &Path) -> Result<()> {
    let latency = log.timeline.iter().any(|i| i.model_cycles.is_some());
    let y = |i: &crate::log::Improvement| {
        if latency {
            i.model_cycles.unwrap_or(0.0)
        } else {
            i.length as f64
        }
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (k, i) in log.timeline.iter().enumerate() {
        if k > 0 {
            points.push((i.found_at_s, y(&log.timeline[k - 1])));
        }
        points.push((i.found_at_s, y(i)));
    }
    if let Some(last) = log.timeline.last() {
        points.push((log.elapsed_s.max(last.found_at_s), y(last)));
    }
    let panel = crate::plot::Panel {
        y_label: if latency {
            "best kernel, model cycles".into()
        } else {
            "best length (instructions)".into()
        },
        series: vec![crate::plot::Series {
            name: format!("{} seed {}", log.task, log.seed),
            points,
        }],
        integer_y: !latency,
    };
    crate::plot::line_chart(
        png,
        &format!("{}: best kernel over the search", log.task),
        "seconds",
        &[panel],
    )
}
