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

/// A product of experts multiplies priors: uniform times the heuristic is the heuristic,
/// weight 0 leaves the first expert alone, and the values are the first expert's.
#[test]
fn product_evaluator_multiplies_priors() {
    use superopt::search::{Evaluator, ProductEvaluator, UniformEvaluator};
    let g = SortGame::new(&Task::load("sort4").unwrap());
    let mut s = g.initial();
    let mut acts = Vec::new();
    g.legal_actions(&s, &mut acts);
    s = acts.iter().find_map(|&a| g.step(&s, a)).unwrap();
    acts.clear();
    g.legal_actions(&s, &mut acts);
    let heuristic = HeuristicEvaluator { temperature: 1.0 };
    let h = heuristic.evaluate(&g, &[&s], &[&acts]).remove(0);
    let u = UniformEvaluator.evaluate(&g, &[&s], &[&acts]).remove(0);
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-5);
    let p = ProductEvaluator {
        a: UniformEvaluator,
        b: &heuristic,
        weight: 1.0,
    };
    let e = p.evaluate(&g, &[&s], &[&acts]).remove(0);
    assert!(
        close(&e.priors, &h.priors),
        "{:?} vs {:?}",
        e.priors,
        h.priors
    );
    assert_eq!(e.value, u.value);
    // The heuristic does not rate every move alike here, so the test can fail.
    assert!(!close(&h.priors, &u.priors));
    let p0 = ProductEvaluator {
        a: UniformEvaluator,
        b: &heuristic,
        weight: 0.0,
    };
    let e0 = p0.evaluate(&g, &[&s], &[&acts]).remove(0);
    assert!(close(&e0.priors, &u.priors));
    // Squared heuristic: sharper than the heuristic.
    let p2 = ProductEvaluator {
        a: &heuristic,
        b: &heuristic,
        weight: 1.0,
    };
    let e2 = p2.evaluate(&g, &[&s], &[&acts]).remove(0);
    let max = |v: &[f32]| v.iter().cloned().fold(0.0, f32::max);
    assert!(max(&e2.priors) > max(&h.priors));
    assert_eq!(Evaluator::<SortGame>::name(&p2), "heuristic x heuristic");
}
