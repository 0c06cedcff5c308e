//! The embedded backend's faults, as a config file and the emulator's
//! `/_emulator/faults` API both write them: which operation (the Gcore SDK's
//! name for it), where (project, region, group name), what goes wrong, how
//! often (`probability`, drawn from `backend.embedded.seed`) and how many
//! times. A [`FaultSpec`] that exists is valid: every field an effect does
//! not use is refused, naming it, so a typo cannot silently match nothing.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! operations {
    ($($name:ident => $text:literal, $tasks:literal;)*) => {
        /// An operation as the Gcore SDK names it (`resource.method`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation { $($name,)* }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$name,)*];

            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => $text,)* }
            }

            /// Whether the operation answers tasks (so a task can fail or stick).
            pub fn starts_tasks(self) -> bool {
                match self { $(Operation::$name => $tasks,)* }
            }
        }
    };
}

operations! {
    GroupsCreate => "security_groups.create", true;
    GroupsUpdate => "security_groups.update", true;
    GroupsDelete => "security_groups.delete", false;
    GroupsGet => "security_groups.get", false;
    GroupsList => "security_groups.list", false;
    GroupsCopy => "security_groups.copy", true;
    GroupsRevert => "security_groups.revert_to_default", true;
    RulesCreate => "rules.create", true;
    RulesDelete => "rules.delete", true;
    RulesReplace => "rules.replace", true;
    TasksGet => "tasks.get", false;
    TasksList => "tasks.list", false;
    TasksAcknowledgeOne => "tasks.acknowledge_one", false;
    TasksAcknowledgeAll => "tasks.acknowledge_all", false;
}

impl Operation {
    pub fn parse(text: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| o.name() == text)
    }

    fn is_task_read(self) -> bool {
        self.name().starts_with("tasks.")
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Operation::parse(&text).ok_or_else(|| serde::de::Error::custom(unknown_operation(&text)))
    }
}

fn unknown_operation(text: &str) -> String {
    let known: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    format!("operation: unknown operation {text:?}; one of {}", known.join(", "))
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The call is answered with this status and message (and `Retry-After`).
    HttpError {
        status: u16,
        message: String,
        retry_after_s: Option<u64>,
    },
    /// The task ends in ERROR with this message; nothing is applied.
    TaskError { message: String },
    /// The task stays RUNNING (holding its group) until the emulator is reset.
    TaskStuck,
    /// Gcore's 409 for a group another task is changing.
    Locked,
    /// The answer comes this much later (a range: drawn from it).
    Latency { delay_ms: u64, max_delay_ms: Option<u64> },
    /// The connection is closed without an answer.
    Reset,
}

impl Effect {
    pub fn name(&self) -> &'static str {
        match self {
            Effect::HttpError { .. } => "http_error",
            Effect::TaskError { .. } => "task_error",
            Effect::TaskStuck => "task_stuck",
            Effect::Locked => "locked",
            Effect::Latency { .. } => "latency",
            Effect::Reset => "reset",
        }
    }

    /// Whether the effect acts on the task a call starts (not on the answer).
    pub fn on_task(&self) -> bool {
        matches!(self, Effect::TaskError { .. } | Effect::TaskStuck)
    }
}

/// One fault, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawFault")]
pub struct FaultSpec {
    pub operation: Operation,
    pub project_id: Option<u64>,
    pub region_id: Option<u64>,
    pub group_name: Option<String>,
    pub effect: Effect,
    /// The chance (0 < p ≤ 1) that a matching call meets the fault.
    pub probability: Option<f64>,
    /// After this many hits the fault is spent.
    pub times: Option<u64>,
}

/// A fault as written: every field of every effect, so that one an effect
/// does not use can be named and refused.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    pub effect: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

/// A fault definition refused: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn refuse(field: &'static str, message: impl Into<String>) -> FaultError {
    FaultError {
        field,
        message: message.into(),
    }
}

/// The longest latency a fault may add (ten minutes).
const MAX_DELAY_MS: u64 = 600_000;
const MAX_MESSAGE: usize = 2048;

impl TryFrom<RawFault> for FaultSpec {
    type Error = FaultError;

    fn try_from(raw: RawFault) -> Result<Self, FaultError> {
        let operation = Operation::parse(&raw.operation).ok_or_else(|| {
            let text = unknown_operation(&raw.operation);
            refuse("operation", text.trim_start_matches("operation: "))
        })?;
        let effect = effect(&raw, operation)?;
        if raw.group_name.is_some() && operation.is_task_read() {
            return Err(refuse("group_name", format!("{operation} names no group")));
        }
        if let Some(p) = raw.probability {
            if !(p > 0.0 && p <= 1.0) {
                return Err(refuse("probability", "must be more than 0 and at most 1"));
            }
        }
        if raw.times == Some(0) {
            return Err(refuse(
                "times",
                "must be at least 1 (leave it out for a fault that never runs out)",
            ));
        }
        Ok(FaultSpec {
            operation,
            project_id: raw.project_id,
            region_id: raw.region_id,
            group_name: raw.group_name,
            effect,
            probability: raw.probability,
            times: raw.times,
        })
    }
}

/// Refuses a field the effect does not use.
fn unused(raw: &RawFault, effect: &str, allowed: &[&str]) -> Result<(), FaultError> {
    let given: [(&'static str, bool); 5] = [
        ("status", raw.status.is_some()),
        ("message", raw.message.is_some()),
        ("retry_after_s", raw.retry_after_s.is_some()),
        ("delay_ms", raw.delay_ms.is_some()),
        ("max_delay_ms", raw.max_delay_ms.is_some()),
    ];
    match given.iter().find(|(name, set)| *set && !allowed.contains(name)) {
        Some((name, _)) => Err(refuse(name, format!("effect {effect} takes no {name}"))),
        None => Ok(()),
    }
}

fn message(raw: &RawFault) -> Result<Option<String>, FaultError> {
    match &raw.message {
        Some(m) if m.len() > MAX_MESSAGE => Err(refuse("message", format!("at most {MAX_MESSAGE} bytes"))),
        other => Ok(other.clone()),
    }
}

fn effect(raw: &RawFault, operation: Operation) -> Result<Effect, FaultError> {
    let name = raw.effect.as_str();
    let effect = match name {
        "http_error" => {
            unused(raw, name, &["status", "message", "retry_after_s"])?;
            let status = raw
                .status
                .ok_or_else(|| refuse("status", "effect http_error needs a status"))?;
            if !(400..=599).contains(&status) {
                return Err(refuse(
                    "status",
                    format!("{status} is not an error status (400 to 599)"),
                ));
            }
            if raw.retry_after_s.is_some_and(|s| s > 3600) {
                return Err(refuse("retry_after_s", "at most 3600"));
            }
            Effect::HttpError {
                status,
                message: message(raw)?.unwrap_or_else(|| format!("Injected fault: HTTP {status}")),
                retry_after_s: raw.retry_after_s,
            }
        }
        "task_error" => {
            unused(raw, name, &["message"])?;
            Effect::TaskError {
                message: message(raw)?.ok_or_else(|| refuse("message", "effect task_error needs a message"))?,
            }
        }
        "task_stuck" => {
            unused(raw, name, &[])?;
            Effect::TaskStuck
        }
        "locked" => {
            unused(raw, name, &[])?;
            Effect::Locked
        }
        "latency" => {
            unused(raw, name, &["delay_ms", "max_delay_ms"])?;
            let delay_ms = raw
                .delay_ms
                .ok_or_else(|| refuse("delay_ms", "effect latency needs delay_ms"))?;
            if delay_ms > MAX_DELAY_MS {
                return Err(refuse("delay_ms", format!("at most {MAX_DELAY_MS}")));
            }
            match raw.max_delay_ms {
                Some(m) if m < delay_ms || m > MAX_DELAY_MS => {
                    return Err(refuse(
                        "max_delay_ms",
                        format!("must be from delay_ms ({delay_ms}) to {MAX_DELAY_MS}"),
                    ))
                }
                _ => {}
            }
            Effect::Latency {
                delay_ms,
                max_delay_ms: raw.max_delay_ms,
            }
        }
        "reset" => {
            unused(raw, name, &[])?;
            Effect::Reset
        }
        other => {
            return Err(refuse(
                "effect",
                format!("unknown effect {other:?}; one of http_error, task_error, task_stuck, locked, latency, reset"),
            ))
        }
    };
    if effect.on_task() && !operation.starts_tasks() {
        return Err(refuse(
            "effect",
            format!("{operation} starts no task, so a {} cannot happen", effect.name()),
        ));
    }
    Ok(effect)
}

impl FaultSpec {
    /// The fault as written (what `GET /_emulator/faults` shows).
    pub fn raw(&self) -> RawFault {
        let mut raw = RawFault {
            operation: self.operation.name().to_string(),
            project_id: self.project_id,
            region_id: self.region_id,
            group_name: self.group_name.clone(),
            effect: self.effect.name().to_string(),
            probability: self.probability,
            times: self.times,
            ..RawFault::default()
        };
        match &self.effect {
            Effect::HttpError {
                status,
                message,
                retry_after_s,
            } => {
                raw.status = Some(*status);
                raw.message = Some(message.clone());
                raw.retry_after_s = *retry_after_s;
            }
            Effect::TaskError { message } => raw.message = Some(message.clone()),
            Effect::Latency { delay_ms, max_delay_ms } => {
                raw.delay_ms = Some(*delay_ms);
                raw.max_delay_ms = *max_delay_ms;
            }
            Effect::TaskStuck | Effect::Locked | Effect::Reset => {}
        }
        raw
    }

    /// A fault from JSON (the emulator API); the error names the field.
    pub fn from_json(value: serde_json::Value) -> Result<FaultSpec, FaultError> {
        let raw: RawFault = serde_json::from_value(value).map_err(|e| {
            let text = e.to_string();
            // serde names an unknown field in backticks: "unknown field `x`, …".
            let field = text.split('`').nth(1).filter(|_| text.starts_with("unknown field"));
            let field = match field {
                Some(f) => leak_field(f),
                None => "fault",
            };
            refuse(field, text)
        })?;
        FaultSpec::try_from(raw)
    }
}

/// A field name from serde's message, as one of the names this module knows
/// (the error carries `&'static str`; an unknown name stays "fault").
fn leak_field(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "operation",
        "project_id",
        "region_id",
        "group_name",
        "effect",
        "status",
        "message",
        "retry_after_s",
        "delay_ms",
        "max_delay_ms",
        "probability",
        "times",
    ];
    KNOWN.iter().copied().find(|k| *k == name).unwrap_or("fault")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> FaultError {
        FaultSpec::from_json(v).expect_err("refused")
    }

    #[test]
    fn each_effect_reads_its_own_fields() {
        let f = FaultSpec::from_json(json!({"operation": "security_groups.update", "effect": "http_error",
            "status": 503, "retry_after_s": 2, "project_id": 1, "times": 2}))
        .expect("valid");
        assert_eq!(f.operation, Operation::GroupsUpdate);
        assert!(matches!(
            f.effect,
            Effect::HttpError {
                status: 503,
                retry_after_s: Some(2),
                ..
            }
        ));
        let back = serde_json::to_value(f.raw()).expect("json");
        assert_eq!(back["message"], "Injected fault: HTTP 503");
        assert_eq!(FaultSpec::from_json(back).expect("round trip"), f);
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let e = err(json!({"operation": "security_groups.nope", "effect": "locked"}));
        assert_eq!(e.field, "operation");
        assert!(e.message.contains("security_groups.create"), "{e}");
        assert_eq!(err(json!({"operation": "tasks.get", "effect": "boom"})).field, "effect");
        assert_eq!(
            err(json!({"operation": "tasks.get", "effect": "http_error", "status": 200})).field,
            "status"
        );
        assert_eq!(
            err(json!({"operation": "tasks.get", "effect": "locked", "status": 500})).field,
            "status"
        );
        assert_eq!(
            err(json!({"operation": "tasks.get", "effect": "task_error", "message": "x"})).field,
            "effect"
        );
        assert_eq!(
            err(json!({"operation": "rules.create", "effect": "task_error"})).field,
            "message"
        );
        assert_eq!(
            err(json!({"operation": "tasks.list", "effect": "reset", "group_name": "a"})).field,
            "group_name"
        );
        assert_eq!(
            err(json!({"operation": "tasks.list", "effect": "reset", "probability": 0})).field,
            "probability"
        );
        assert_eq!(
            err(json!({"operation": "tasks.list", "effect": "reset", "times": 0})).field,
            "times"
        );
        let e = err(json!({"operation": "tasks.list", "effect": "reset", "colour": 1}));
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        assert_eq!(
            err(json!({"operation": "tasks.list", "effect": "latency", "delay_ms": 10, "max_delay_ms": 5})).field,
            "max_delay_ms"
        );
    }
}
