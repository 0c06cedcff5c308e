//! CF v3 request bodies as CC's messages validate them
//! (`SecurityGroupCreateMessage`, `SecurityGroupUpdateMessage`,
//! `ToManyRelationshipMessage`): every message-layer error, in CC's order,
//! in one 422; a body that passes is then checked by the v2 model validator
//! too (name format, rules length, the v2 rule checks), as CC's save does.

use super::super::body::{ruby_json_len, validate_rules, MAX_RULES_CHARS};
use super::super::destination::CfFlags;
use super::super::name;
use super::error::V3Error;
use super::rule::{self, ObjectListOrNot};
use crate::json::{Element, ObjectList};
use crate::model::Rule;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::fmt;

const MAX_NAME: usize = 250;

/// `POST /v3/security_groups`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct V3Create {
    pub name: String,
    pub rules: Vec<Rule>,
    pub running: bool,
    pub staging: bool,
    pub running_spaces: Vec<String>,
    pub staging_spaces: Vec<String>,
}

/// `PATCH /v3/security_groups/:guid`; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct V3Update {
    pub name: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub running: Option<bool>,
    pub staging: Option<bool>,
}

/// A body's top-level keys in order, values raw (a repeated key keeps its
/// first place and its last value, as Ruby's parser does).
struct Top<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Top<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'a>, A::Error> {
                let mut out: Vec<(String, &'a RawValue)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'a RawValue = map.next_value()?;
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => out.push((key, value)),
                    }
                }
                Ok(Top(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Top<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn value(&self, key: &str) -> Option<Value> {
        self.get(key).and_then(|r| serde_json::from_str(r.get()).ok())
    }

    fn unknown(&self, allowed: &[&str]) -> Option<String> {
        let keys: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| format!("'{k}'"))
            .collect();
        (!keys.is_empty()).then(|| format!("Unknown field(s): {}", keys.join(", ")))
    }
}

fn decode(body: &[u8]) -> Result<Top<'_>, V3Error> {
    // CC reads an empty body as `{}`.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Top(Vec::new()));
    }
    serde_json::from_slice::<Top>(body).map_err(|_| V3Error::MessageParse)
}

/// The `rules` of a body: the v3 messages, or the list to check further.
fn rules_value(raw: &RawValue, flags: CfFlags, errors: &mut Vec<String>) -> Option<Vec<crate::json::Fields>> {
    let list: ObjectList = match serde_json::from_str(raw.get()) {
        Ok(l) => l,
        // A number past f64 (`1e400`): Ruby reads it as Infinity and CC then
        // refuses the field; serde_json cannot read it at all, so the value is
        // named rather than called "not an array".
        Err(e) if e.to_string().starts_with("number out of range") => {
            errors.push("Rules hold a number out of range (larger than a 64-bit float)".into());
            return None;
        }
        Err(_) => {
            errors.push("Rules must be an array".into());
            return None;
        }
    };
    let list: ObjectListOrNot = list.into();
    let before = errors.len();
    errors.extend(rule::messages(&list, flags));
    if errors.len() > before {
        return None;
    }
    match list {
        ObjectListOrNot::List(items) => Some(
            items
                .into_iter()
                .filter_map(|e| match e {
                    Element::Object(f) => Some(f),
                    Element::Other(_) => None,
                })
                .collect(),
        ),
        ObjectListOrNot::NotAList => None,
    }
}

fn globally_enabled(value: Option<Value>, errors: &mut Vec<String>) -> (Option<bool>, Option<bool>) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return (None, None);
    };
    let Some(map) = value.as_object() else {
        errors.push("Globally enabled must be an object".into());
        return (None, None);
    };
    if map.keys().any(|k| k != "running" && k != "staging") {
        errors.push("Globally enabled only allows keys 'running' or 'staging'".into());
        return (None, None);
    }
    if map.values().any(|v| !v.is_boolean()) {
        errors.push("Globally enabled values must be booleans".into());
        return (None, None);
    }
    (
        map.get("running").and_then(Value::as_bool),
        map.get("staging").and_then(Value::as_bool),
    )
}

/// One to-many relationship (`running_spaces`, `staging_spaces`) of a create.
fn spaces(value: Option<&Value>, key: &str, label: &str, errors: &mut Vec<String>) -> Vec<String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let data = value.get("data").filter(|d| !d.is_null() && *d != &Value::Bool(false));
    let elements = data.and_then(Value::as_array).filter(|items| {
        items
            .iter()
            .all(|e| e.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("guid")))
    });
    let Some(elements) = elements else {
        errors.push(format!(
            "Relationships {label}s must be structured like this: \"{key}: {{\"data\": [{{\"guid\": \"valid-guid\"}},{{\"guid\": \"valid-guid\"}}]}}\""
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in elements {
        match e.get("guid") {
            Some(Value::String(g)) if (1..=200).contains(&g.chars().count()) => out.push(g.clone()),
            Some(Value::String(_)) => errors.push(format!(
                "Relationships {label} guids must be between 1 and 200 characters"
            )),
            _ => {
                errors.push(format!("Relationships {label} guids must be a string"));
                errors.push(format!(
                    "Relationships {label} guids must be between 1 and 200 characters"
                ));
            }
        }
    }
    out
}

fn relationships(value: Option<Value>, errors: &mut Vec<String>) -> (Vec<String>, Vec<String>) {
    let Some(map) = value.as_ref().and_then(Value::as_object) else {
        errors.push("Relationships 'relationships' is not an object".into());
        return (Vec::new(), Vec::new());
    };
    if map.is_empty() {
        errors.push("Relationships 'relationships' must include one or more valid relationships".into());
        return (Vec::new(), Vec::new());
    }
    let running = spaces(map.get("running_spaces"), "running_spaces", "Running space", errors);
    let staging = spaces(map.get("staging_spaces"), "staging_spaces", "Staging space", errors);
    (running, staging)
}

/// The v2 model checks CC's save runs after the message layer.
fn model(
    name: Option<&str>,
    rules: Option<(&RawValue, Vec<crate::json::Fields>)>,
    flags: CfFlags,
) -> Result<Option<Vec<Rule>>, V3Error> {
    let mut invalid: Vec<String> = name.map(name::errors).unwrap_or_default();
    let rules = rules.map(|(raw, list)| {
        if ruby_json_len(raw.get()) > MAX_RULES_CHARS {
            invalid.push(format!("rules length must not exceed {MAX_RULES_CHARS} characters"));
        }
        validate_rules(&list, flags, &mut invalid)
    });
    if invalid.is_empty() {
        Ok(rules)
    } else {
        Err(V3Error::Unprocessable(invalid))
    }
}

fn name_string(value: Option<&RawValue>) -> (bool, Option<String>) {
    match value.map(|r| serde_json::from_str::<Value>(r.get())) {
        Some(Ok(Value::String(s))) => (true, Some(s)),
        Some(_) => (true, None),
        None => (false, None),
    }
}

pub fn parse_create(body: &[u8], flags: CfFlags) -> Result<V3Create, V3Error> {
    let top = decode(body)?;
    let mut errors: Vec<String> = top
        .unknown(&["name", "globally_enabled", "relationships", "rules"])
        .into_iter()
        .collect();
    let (running_spaces, staging_spaces) = match top.get("relationships") {
        Some(_) => relationships(top.value("relationships"), &mut errors),
        None => (Vec::new(), Vec::new()),
    };
    let rules = top
        .get("rules")
        .and_then(|raw| rules_value(raw, flags, &mut errors).map(|l| (raw, l)));
    let (_, name) = name_string(top.get("name"));
    match &name {
        None => {
            errors.push("Name can't be blank".into());
            errors.push("Name must be a string".into());
        }
        Some(n) if n.trim().is_empty() => errors.push("Name can't be blank".into()),
        Some(n) if n.chars().count() > MAX_NAME => {
            errors.push(format!("Name is too long (maximum is {MAX_NAME} characters)"))
        }
        Some(_) => {}
    }
    let (running, staging) = globally_enabled(top.value("globally_enabled"), &mut errors);
    if !errors.is_empty() {
        return Err(V3Error::Unprocessable(errors));
    }
    let name = name.unwrap_or_default();
    let rules = model(Some(&name), rules, flags)?.unwrap_or_default();
    Ok(V3Create {
        name,
        rules,
        running: running.unwrap_or(false),
        staging: staging.unwrap_or(false),
        running_spaces,
        staging_spaces,
    })
}

pub fn parse_update(body: &[u8], flags: CfFlags) -> Result<V3Update, V3Error> {
    let top = decode(body)?;
    let mut errors: Vec<String> = top
        .unknown(&["name", "globally_enabled", "rules"])
        .into_iter()
        .collect();
    let rules = top
        .get("rules")
        .and_then(|raw| rules_value(raw, flags, &mut errors).map(|l| (raw, l)));
    let (running, staging) = globally_enabled(top.value("globally_enabled"), &mut errors);
    let (given, name) = name_string(top.get("name"));
    if given {
        match &name {
            None => {
                errors.push("Name must be a string".into());
                errors.push("Name is too short (minimum is 1 character)".into());
            }
            Some(n) if n.is_empty() => errors.push("Name is too short (minimum is 1 character)".into()),
            Some(n) if n.chars().count() > MAX_NAME => {
                errors.push(format!("Name is too long (maximum is {MAX_NAME} characters)"))
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(V3Error::Unprocessable(errors));
    }
    let rules = model(name.as_deref(), rules, flags)?;
    Ok(V3Update {
        name,
        rules,
        running,
        staging,
    })
}

/// `POST …/relationships/{running,staging}_spaces`: the space guids.
pub fn parse_relationship(body: &[u8]) -> Result<Vec<String>, V3Error> {
    let top = decode(body)?;
    let mut errors: Vec<String> = top.unknown(&["data"]).into_iter().collect();
    let data = top.value("data");
    let mut guids = Vec::new();
    match data {
        None | Some(Value::Null) => {
            errors.push("Data can't be blank".into());
            errors.push("Data must be an array".into());
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                errors.push("Data can't be blank".into());
            }
            for (i, item) in items.iter().enumerate() {
                match item.get("guid") {
                    Some(Value::String(g)) => guids.push(g.clone()),
                    _ => errors.push(format!("Invalid data type: Data[{i}] guid should be a string.")),
                }
            }
        }
        Some(_) => errors.push("Data must be an array".into()),
    }
    if errors.is_empty() {
        Ok(guids)
    } else {
        Err(V3Error::Unprocessable(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_out_of_range_is_named_not_called_a_non_array() {
        let raw = serde_json::value::RawValue::from_string(
            r#"[{"protocol":"tcp","destination":"10.0.0.1","ports":1e400}]"#.into(),
        )
        .unwrap();
        let mut errors = Vec::new();
        assert!(rules_value(&raw, CfFlags::default(), &mut errors).is_none());
        assert_eq!(
            errors,
            ["Rules hold a number out of range (larger than a 64-bit float)"]
        );
    }

    fn create_err(body: &str) -> String {
        parse_create(body.as_bytes(), CfFlags::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn create_messages_in_cc_order() {
        assert_eq!(create_err("{}"), "Name can't be blank, Name must be a string");
        assert_eq!(
            create_err(r#"{"name":"x","foo":1,"globally_enabled":{"running":1}}"#),
            "Unknown field(s): 'foo', Globally enabled values must be booleans"
        );
        assert_eq!(
            create_err(r#"{"name":"x","relationships":{}}"#),
            "Relationships 'relationships' must include one or more valid relationships"
        );
        assert_eq!(
            create_err(r#"{"name":"x","relationships":{"running_spaces":{"data":[{"guid":5}]}}}"#),
            "Relationships Running space guids must be a string, Relationships Running space guids must be between 1 and 200 characters"
        );
        assert_eq!(
            create_err(
                r#"{"name":"x","rules":[{"protocol":"icmp","destination":"1.1.1.1","type":0,"code":0,"ports":"80"}]}"#
            ),
            "rules rule number 1 contains the invalid field 'ports'",
            "a rule v3 accepts but the v2 model refuses"
        );
        assert_eq!(
            parse_create(b"not json", CfFlags::default()).unwrap_err(),
            V3Error::MessageParse
        );
        let ok = parse_create(
            br#"{"name":"web","globally_enabled":{"running":true},"relationships":{"staging_spaces":{"data":[{"guid":"s1"}]}},"rules":[]}"#,
            CfFlags::default(),
        )
        .unwrap();
        assert!(ok.running && !ok.staging);
        assert_eq!(ok.staging_spaces, ["s1"]);
    }

    #[test]
    fn update_and_relationship_messages() {
        let e = parse_update(br#"{"name":null}"#, CfFlags::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Name must be a string, Name is too short (minimum is 1 character)"
        );
        let e = parse_update(br#"{"relationships":{}}"#, CfFlags::default()).unwrap_err();
        assert_eq!(e.to_string(), "Unknown field(s): 'relationships'");
        assert_eq!(parse_update(b"", CfFlags::default()).unwrap(), V3Update::default());
        let e = parse_relationship(br#"{"data":[]}"#).unwrap_err();
        assert_eq!(e.to_string(), "Data can't be blank");
        let e = parse_relationship(br#"{"data":[{"guid":1}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "Invalid data type: Data[0] guid should be a string.");
        assert_eq!(parse_relationship(br#"{"data":[{"guid":"a"}]}"#).unwrap(), ["a"]);
    }
}
