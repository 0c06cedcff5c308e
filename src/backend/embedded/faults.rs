//! The emulator's armed faults: which call meets which fault, drawn
//! repeatably. Each fault draws from its own generator, seeded from
//! `backend.embedded.seed` and its place in the list, and draws only when a
//! call matches it: the same calls in the same order meet the same faults in
//! any process, so a failing CI run can be replayed with its seed.

use crate::config::faults::{Effect, FaultSpec, Operation};
use crate::model::Scope;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A call as faults see it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub op: Operation,
    pub scope: Option<Scope>,
    pub group_name: Option<&'a str>,
}

/// Where a call meets faults: before it answers, or when its task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Answer,
    Task,
}

struct Armed {
    spec: FaultSpec,
    rng: fastrand::Rng,
    hits: u64,
}

struct Armory {
    seed: u64,
    armed: Vec<Armed>,
}

/// A fault as `GET /_emulator/faults` shows it: as written, and how often it hit.
#[derive(Debug, Serialize)]
pub struct FaultView {
    #[serde(flatten)]
    pub fault: crate::config::faults::RawFault,
    pub hits: u64,
    /// Hits left before it is spent (`null`: it never runs out).
    pub left: Option<u64>,
}

pub struct Faults {
    armory: Mutex<Armory>,
    /// Whether any fault is armed: the calls of an emulator without faults
    /// do not take the lock.
    any: AtomicBool,
}

/// Mixes the seed with a fault's place, so two faults draw apart.
fn stream(seed: u64, index: usize) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Faults {
    pub fn new(seed: Option<u64>, specs: Vec<FaultSpec>) -> Faults {
        let faults = Faults {
            armory: Mutex::new(Armory {
                seed: seed.unwrap_or_else(|| fastrand::u64(..)),
                armed: Vec::new(),
            }),
            any: AtomicBool::new(false),
        };
        faults.set(specs);
        faults
    }

    fn armory(&self) -> MutexGuard<'_, Armory> {
        self.armory.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn seed(&self) -> u64 {
        self.armory().seed
    }

    /// Replaces every fault; each starts its draws afresh from the seed.
    pub fn set(&self, specs: Vec<FaultSpec>) {
        let mut armory = self.armory();
        let seed = armory.seed;
        armory.armed = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Armed {
                spec,
                rng: stream(seed, i),
                hits: 0,
            })
            .collect();
        self.any.store(!armory.armed.is_empty(), Ordering::Release);
    }

    pub fn list(&self) -> Vec<FaultView> {
        self.armory()
            .armed
            .iter()
            .map(|a| FaultView {
                fault: a.spec.raw(),
                hits: a.hits,
                left: a.spec.times.map(|t| t.saturating_sub(a.hits)),
            })
            .collect()
    }

    pub fn armed(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// What the faults matching `call` at `stage` do: every latency that
    /// hits adds up; the first other fault that hits is the effect (a
    /// fault whose draw misses lets the next one try).
    pub fn draw(&self, call: &Call, stage: Stage) -> Drawn {
        let mut drawn = Drawn::default();
        if !self.armed() {
            return drawn;
        }
        let mut armory = self.armory();
        for armed in armory.armed.iter_mut() {
            if !matches(&armed.spec, call, stage) || armed.spec.times.is_some_and(|t| armed.hits >= t) {
                continue;
            }
            if let Some(p) = armed.spec.probability {
                if armed.rng.f64() >= p {
                    continue;
                }
            }
            armed.hits += 1;
            match armed.spec.effect {
                // A range is drawn from the fault's own stream, so that it
                // too repeats with the seed.
                Effect::Latency { delay_ms, max_delay_ms } => {
                    drawn.delay_ms += armed.rng.u64(delay_ms..=max_delay_ms.unwrap_or(delay_ms).max(delay_ms));
                }
                ref other => {
                    drawn.effect = Some(other.clone());
                    break;
                }
            }
        }
        drawn
    }
}

/// What a call meets.
#[derive(Debug, Default, PartialEq)]
pub struct Drawn {
    pub delay_ms: u64,
    pub effect: Option<Effect>,
}

fn matches(spec: &FaultSpec, call: &Call, stage: Stage) -> bool {
    let at = if spec.effect.on_task() {
        Stage::Task
    } else {
        Stage::Answer
    };
    if spec.operation != call.op || at != stage {
        return false;
    }
    let scope_ok = |want: Option<u64>, have: Option<u64>| want.is_none() || want == have;
    scope_ok(spec.project_id, call.scope.map(|s| s.project_id))
        && scope_ok(spec.region_id, call.scope.map(|s| s.region_id))
        && spec.group_name.as_deref().is_none_or(|n| call.group_name == Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> FaultSpec {
        FaultSpec::from_json(v).expect("valid")
    }

    fn call(name: &str, project: u64) -> Call<'_> {
        Call {
            op: Operation::GroupsUpdate,
            scope: Some(Scope {
                project_id: project,
                region_id: 1,
            }),
            group_name: Some(name),
        }
    }

    #[test]
    fn faults_match_their_scope_and_run_out() {
        let f = Faults::new(
            Some(1),
            vec![spec(json!({"operation": "security_groups.update", "effect": "locked",
                "project_id": 7, "group_name": "web", "times": 2}))],
        );
        let effect = |name, project, stage| f.draw(&call(name, project), stage).effect;
        assert_eq!(effect("web", 8, Stage::Answer), None);
        assert_eq!(effect("db", 7, Stage::Answer), None);
        assert_eq!(effect("web", 7, Stage::Task), None);
        assert_eq!(effect("web", 7, Stage::Answer), Some(Effect::Locked));
        assert_eq!(effect("web", 7, Stage::Answer), Some(Effect::Locked));
        assert_eq!(effect("web", 7, Stage::Answer), None, "spent after two");
        assert_eq!(f.list()[0].left, Some(0));
    }

    #[test]
    fn a_seed_repeats_its_draws_and_another_differs() {
        let fault = || {
            vec![spec(
                json!({"operation": "security_groups.update", "effect": "locked", "probability": 0.5}),
            )]
        };
        let hits = |seed| {
            let f = Faults::new(Some(seed), fault());
            (0..64)
                .map(|_| f.draw(&call("web", 1), Stage::Answer).effect.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(hits(42), hits(42));
        assert_ne!(hits(42), hits(43));
        let n = hits(42).iter().filter(|h| **h).count();
        assert!((16..=48).contains(&n), "{n} of 64 at p = 0.5");
    }
}
