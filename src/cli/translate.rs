//! `sgbridge translate`: rules from one dialect to the other, stdin to stdout.
//!
//! CF input is a JSON array of CF rules. Gcore input is a JSON array of Gcore
//! rules, or `{"rules": [...], "tags": {...}}` where reserved `sgbridge.cf.log.*`
//! tags restore CF `log` flags. Invalid input exits non-zero with the input
//! dialect's error body on stderr.

use crate::dialect::cf::{self, CfError, CfFlags};
use crate::dialect::gcore::{self, GcoreError, GcoreFlags};
use crate::mapping::on_gcore::{self, Policy, SmtpPolicy};
use crate::mapping::PlanError;
use crate::model::{Atom, CfAttrs, Rule, Tag};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    Cf,
    Gcore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Port25 {
    /// Carve port 25 out of egress TCP/UDP rules, with a warning.
    #[default]
    Narrow,
    /// Refuse rules that cover it.
    Reject,
    /// Keep them (an account whose block was lifted).
    Allow,
}

#[derive(Debug, Clone, Args)]
pub struct TranslateArgs {
    /// Dialect of the rules on stdin.
    #[arg(long, value_enum)]
    pub from: Dialect,
    /// Dialect to write on stdout.
    #[arg(long, value_enum)]
    pub to: Dialect,
    /// CC's `enable_comma_delimited_destinations` (accept and write `a,b` destinations).
    #[arg(long)]
    pub comma_delimited_destinations: bool,
    /// CC's `enable_ipv6` (accept IPv6 destinations in CF rules).
    #[arg(long)]
    pub ipv6: bool,
    /// What to do with egress TCP/UDP rules that cover port 25, which Gcore blocks.
    #[arg(long, value_enum, default_value_t = Port25::Narrow)]
    pub port25: Port25,
    /// With `--to gcore`: write `{"rules": [...], "tags": {...}}`, the tags
    /// carrying CF `log` flags (Gcore rules have no such field).
    #[arg(long)]
    pub with_tags: bool,
}

/// What a successful run writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    /// Warnings, one per line.
    pub warnings: Vec<String>,
}

impl TranslateArgs {
    fn cf_flags(&self) -> CfFlags {
        CfFlags {
            comma_delimited_destinations: self.comma_delimited_destinations,
            ipv6: self.ipv6,
        }
    }

    /// The server's CF-on-Gcore mapping, without a rule cap.
    fn policy(&self) -> Policy {
        let smtp = match self.port25 {
            Port25::Narrow => SmtpPolicy::Narrow,
            Port25::Reject => SmtpPolicy::Reject,
            Port25::Allow => SmtpPolicy::Allow,
        };
        Policy {
            smtp,
            max_rules: usize::MAX,
        }
    }
}

/// Translate; `Err` is the text for stderr.
pub fn run(args: &TranslateArgs, input: &[u8]) -> Result<Output, String> {
    let rules = match (args.from, args.to) {
        (Dialect::Cf, Dialect::Gcore) => return cf_to_gcore(args, input),
        (Dialect::Cf, Dialect::Cf) => cf::body::parse_rules(input, args.cf_flags()).map_err(|e| cf_error(&e))?,
        (Dialect::Gcore, to) => {
            let atoms = read_gcore(input, args).map_err(|e| gcore_error(&e))?;
            match to {
                // Gcore → Gcore keeps atoms one to one.
                Dialect::Gcore => atoms.iter().map(Rule::from).collect(),
                Dialect::Cf => on_gcore::to_cf(&atoms, args.policy()),
            }
        }
    };
    match args.to {
        Dialect::Cf => {
            let out = cf::render::rules(&rules, args.cf_flags()).map_err(|errs| {
                let messages = errs.iter().map(|(n, e)| format!("rules rule number {n} {e}")).collect();
                cf_error(&CfError::SecurityGroupInvalid(messages))
            })?;
            Ok(Output {
                stdout: to_json_sized(&out, input.len()),
                warnings: Vec::new(),
            })
        }
        Dialect::Gcore => gcore_output(args, on_gcore::to_gcore(&rules, args.policy(), 0), input.len()),
    }
}

/// CF rules mapped one by one as they are read: a 16 MB rule set is never
/// also held as a list of model rules.
fn cf_to_gcore(args: &TranslateArgs, input: &[u8]) -> Result<Output, String> {
    // Room that is never written costs no memory, a short guess a copy of all.
    let mut plan = on_gcore::ToGcore::new(args.policy(), 0, cf::body::list_room(input.len()));
    // Only valid rules are pushed, and the plan is used only when every rule
    // was valid: its rule numbers are then the list's. Without a cap, `push`
    // cannot fail; were it to, the first error stands.
    let mut stopped = None;
    cf::body::each_rule(input, args.cf_flags(), |rule| {
        if stopped.is_none() {
            stopped = plan.push(&rule).err();
        }
    })
    .map_err(|e| cf_error(&e))?;
    let planned = match stopped {
        Some(e) => Err(e),
        None => plan.finish(),
    };
    gcore_output(args, planned, input.len())
}

/// The Gcore rules (and, with `--with-tags`, tags) of expanded model rules.
fn gcore_output(
    args: &TranslateArgs,
    planned: Result<on_gcore::Expanded, PlanError>,
    input_len: usize,
) -> Result<Output, String> {
    let expanded = planned.map_err(|e| {
        let messages: Vec<String> = match e {
            PlanError::Rules(errs) => errs.iter().map(|(n, e)| format!("rules rule number {n} {e}")).collect(),
            other => vec![other.to_string()],
        };
        match args.from {
            Dialect::Cf => cf_error(&CfError::SecurityGroupInvalid(messages)),
            Dialect::Gcore => gcore_error(&GcoreError::validation(messages.join(", "))),
        }
    })?;
    let mut warnings = expanded.warnings;
    let log_tags = on_gcore::cf_tags(&CfAttrs::default(), &expanded.atoms);
    // Pretty Gcore rules run about 3.5 times the bytes of compact CF ones:
    // sized up front, a 16 MB rule set is not copied through every doubling.
    let mut out = String::with_capacity(input_len.saturating_mul(4));
    if args.with_tags {
        let tags: BTreeMap<&str, &str> = log_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        gcore::pretty::write_rules_with_tags(&expanded.atoms, tags, &mut out);
    } else {
        if !log_tags.is_empty() {
            warnings.push(
                "CF `log` flags have no Gcore rule field and are not in this output; use --with-tags to keep them as group tags".into(),
            );
        }
        gcore::pretty::write_rules(&expanded.atoms, 0, &mut out);
    }
    out.push('\n');
    Ok(Output { stdout: out, warnings })
}

#[derive(Deserialize)]
struct GcoreInput<'a> {
    #[serde(borrow)]
    rules: &'a RawValue,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn read_gcore(input: &[u8], args: &TranslateArgs) -> Result<Vec<Atom>, GcoreError> {
    let flags = GcoreFlags {
        smtp_blocked: args.port25 != Port25::Allow,
        max_rules: usize::MAX,
    };
    let is_object = input.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return gcore::body::parse_rule_list(input, flags);
    }
    let wrapped: GcoreInput =
        serde_json::from_slice(input).map_err(|e| GcoreError::validation(format!("Invalid input: {e}")))?;
    let atoms = gcore::body::parse_rule_list(wrapped.rules.get().as_bytes(), flags)?;
    let tags: Vec<Tag> = wrapped.tags.into_iter().map(|(k, v)| Tag::writable(k, v)).collect();
    Ok(on_gcore::with_log(atoms, &tags))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    to_json_sized(value, 0)
}

/// [`to_json`] into a buffer of about the size expected: a 16 MB rule set
/// would otherwise be copied through every doubling.
fn to_json_sized<T: serde::Serialize>(value: &T, size: usize) -> String {
    let mut out = Vec::with_capacity(size);
    // Serialising plain data structs cannot fail, and JSON is UTF-8.
    if serde_json::to_writer_pretty(&mut out, value).is_err() {
        return "\n".into();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

fn cf_error(e: &CfError) -> String {
    to_json(&e.body())
}

fn gcore_error(e: &GcoreError) -> String {
    to_json(&e.body(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: Dialect, to: Dialect) -> TranslateArgs {
        TranslateArgs {
            from,
            to,
            comma_delimited_destinations: false,
            ipv6: false,
            port25: Port25::Narrow,
            with_tags: true,
        }
    }

    #[test]
    fn cf_errors_are_cc_bodies() {
        let err = run(&args(Dialect::Cf, Dialect::Gcore), br#"[{"protocol":"tcp"}]"#).unwrap_err();
        let body: cf::CfErrorBody = serde_json::from_str(&err).unwrap();
        assert_eq!(body.code, 300001);
        let err = run(&args(Dialect::Cf, Dialect::Gcore), br#"{"not":"a list"}"#).unwrap_err();
        assert!(err.contains("Expected instance of Array, given instance of Hash"));
    }

    /// CF rules are mapped as they are read; what Gcore cannot take is still
    /// reported only for a valid list, and numbered as the list numbers it.
    #[test]
    fn a_cf_list_is_checked_whole_before_its_gcore_errors() {
        let reject = TranslateArgs {
            port25: Port25::Reject,
            ..args(Dialect::Cf, Dialect::Gcore)
        };
        let smtp = r#"{"protocol":"tcp","destination":"10.0.0.1","ports":"25"}"#;
        let web = r#"{"protocol":"tcp","destination":"10.0.0.2","ports":"443"}"#;
        let err = run(&reject, format!(r#"[{smtp},{{"protocol":"tcp"}}]"#).as_bytes()).unwrap_err();
        assert!(
            err.contains("rules rule number 2 missing required field 'destination'"),
            "{err}"
        );
        assert!(!err.contains("port 25"), "{err}");
        let err = run(&reject, format!("[{web},{web},{smtp}]").as_bytes()).unwrap_err();
        assert!(
            err.contains("rules rule number 3 covers egress TCP/UDP port 25"),
            "{err}"
        );
        let out = run(&args(Dialect::Cf, Dialect::Gcore), format!("[{web},{web}]").as_bytes()).unwrap();
        let rules: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(
            rules["rules"].as_array().map(Vec::len),
            Some(1),
            "repeats are one Gcore rule"
        );
    }

    #[test]
    fn gcore_errors_are_gcore_bodies() {
        let err = run(&args(Dialect::Gcore, Dialect::Cf), br#"[{"protocol":"tcp"}]"#).unwrap_err();
        let body: gcore::GcoreErrorBody = serde_json::from_str(&err).unwrap();
        assert_eq!(body.exception_class, "ValidationError");
    }

    #[test]
    fn ingress_cannot_become_cf() {
        let err = run(
            &args(Dialect::Gcore, Dialect::Cf),
            br#"[{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22}]"#,
        )
        .unwrap_err();
        assert!(err.contains("ingress"), "{err}");
    }
}
