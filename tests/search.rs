//! Self-play episodes: what `play_episode` records is a trajectory of the game.

use rand::SeedableRng;
use std::sync::{atomic::AtomicBool, Arc};
use std::time::Duration;
use superopt::game::SortGame;
use superopt::search::{play_episode, Budget, Environment, HeuristicEvaluator, MctsConfig, Shared};
use superopt::Task;

#[test]
fn a_recorded_episode_is_a_trajectory_to_a_solution() {
    let g = SortGame::new(&Task::load("sort3").unwrap());
    let shared = Shared::new(
        Budget {
            time: Duration::from_secs(60),
            target: None,
            max_expansions: None,
        },
        Arc::new(AtomicBool::new(false)),
    );
    let cfg = MctsConfig {
        c_puct: 0.1,
        simulations: 50,
        seed: 3,
        ..MctsConfig::default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    // Within 20 episodes one reaches a kernel.
    let ep = (0..20)
        .map(|_| {
            play_episode(
                &g,
                &HeuristicEvaluator { temperature: 1.0 },
                &cfg,
                &shared,
                &mut rng,
                true,
            )
            .unwrap()
        })
        .find(|e| e.solution_cost.is_some())
        .expect("an episode that ends in a kernel");
    let total = ep.solution_cost.unwrap();
    assert!((17..=36).contains(&total), "{total}");
    assert!(!ep.steps.is_empty());
    let mut state = g.initial();
    for step in &ep.steps {
        assert_eq!(
            g.key(&step.state),
            g.key(&state),
            "each step starts where the last one went"
        );
        assert_eq!(step.actions.len(), step.visits.len());
        assert!(step.visits.iter().sum::<u32>() > 0);
        // The committed move is one of the root's children and was visited.
        let k = step.actions.iter().position(|&a| a == step.chosen).unwrap();
        assert!(step.visits[k] > 0);
        let chosen = step.chosen;
        state = g.step(&state, chosen).unwrap();
    }
}
