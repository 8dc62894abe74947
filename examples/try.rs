use std::sync::{atomic::AtomicBool, Arc};
use std::time::Duration;
use superopt::game::SortGame;
use superopt::search::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let task = superopt::Task::load(&args[1]).unwrap();
    let strat = args[2].clone();
    let secs: u64 = args[3].parse().unwrap();
    let target: Option<u32> = args.get(4).map(|s| s.parse().unwrap());
    let game = SortGame::new(&task);
    let shared = Shared::new(Budget { time: Duration::from_secs(secs), target, max_expansions: None }, Arc::new(AtomicBool::new(false)));
    let r = match strat.as_str() {
        "astar" => astar(&game, 1.0, &shared),
        s if s.starts_with("wastar") => astar(&game, s[6..].parse().unwrap(), &shared),
        "mcts" => {
            let g = |k: &str, d: f32| std::env::var(k).ok().map(|v| v.parse().unwrap()).unwrap_or(d);
            let cfg = MctsConfig { c_puct: g("C", 1.25), simulations: g("SIMS", 200.0) as u32, seed: g("SEED", 0.0) as u64, prior_noise: g("NOISE", 0.5), max_backup: g("MAXB", 1.0) > 0.5 };
            mcts(&game, &HeuristicEvaluator { temperature: g("TEMP", 1.0) }, &cfg, &shared)
        }
        "mctsu" => mcts(&game, &UniformEvaluator, &MctsConfig::default(), &shared),
        _ => panic!(),
    };
    println!("stop {:?} explored {} elapsed {:.2}", r, shared.explored(), shared.elapsed());
    for f in shared.found() {
        println!("cost {} at {:.2}s explored {}", f.cost, f.at_s, f.explored);
    }
    if let Some(f) = shared.found().last() {
        for i in game.program(&f.actions).unwrap() { println!("  {}", i); }
    }
}
