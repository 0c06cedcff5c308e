//! CF v2 create/update bodies: CC's message layer (`JsonMessage` + membrane
//! schemas), then the model validation of name and rules.
//!
//! Parsed into typed structs in one pass over the input: the `rules` array is
//! captured raw (borrowed, not copied) and parsed into per-rule field lists, so
//! a body near CC's 16 MB rules limit costs time and memory linear in its size.

use super::destination::CfFlags;
use super::error::CfError;
use super::{name, rule};
use crate::json::{Scalar, ScalarList};
use crate::model::Rule;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;

/// CC's `MAX_RULES_CHAR_LENGTH`: the rules column holds 2^24 - 1 characters.
pub const MAX_RULES_CHARS: usize = (1 << 24) - 1;

/// Whether `name` is required (create) or everything is optional (update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// A validated body: absent fields are `None` (CC drops `null` values too).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupBody {
    pub name: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub space_guids: Option<Vec<String>>,
    pub staging_space_guids: Option<Vec<String>>,
}

/// The top-level object, shallowly: unknown keys are skipped (CC ignores them).
#[derive(Default)]
struct TopLevel<'a> {
    name: Option<Scalar>,
    rules: Option<&'a RawValue>,
    space_guids: Option<ScalarList>,
    staging_space_guids: Option<ScalarList>,
    /// Set when the body is JSON but not an object.
    not_object: Option<&'static str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel<'a>, A::Error> {
                let mut top = TopLevel::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "name" => top.name = Some(map.next_value()?).filter(|v| *v != Scalar::Null),
                        "rules" => top.rules = Some(map.next_value::<&'a RawValue>()?).filter(|r| r.get() != "null"),
                        "space_guids" => top.space_guids = non_null(map.next_value()?),
                        "staging_space_guids" => top.staging_space_guids = non_null(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_object("Array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TopLevel<'a>, E> {
                Ok(not_object("String"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TopLevel<'a>, E> {
                Ok(not_object("Boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TopLevel<'a>, E> {
                Ok(not_object("Integer"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TopLevel<'a>, E> {
                Ok(not_object("Integer"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TopLevel<'a>, E> {
                Ok(not_object("Float"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TopLevel<'a>, E> {
                Ok(not_object("nil"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn not_object<'a>(class: &'static str) -> TopLevel<'a> {
    TopLevel {
        not_object: Some(class),
        ..TopLevel::default()
    }
}

fn non_null(list: ScalarList) -> Option<ScalarList> {
    (list != ScalarList::Other(Scalar::Null)).then_some(list)
}

/// Parse and validate a create (`POST`) or update (`PUT`) body.
pub fn parse(body: &[u8], mode: Mode, flags: CfFlags) -> Result<GroupBody, CfError> {
    let top = decode(body)?;
    let mut field_errors: Vec<(&str, String)> = Vec::new();
    let name = match (top.name, mode) {
        (Some(Scalar::Str(s)), _) => Some(s.into_string()),
        (Some(other), _) => {
            field_errors.push(("name", class_error("String", &other)));
            None
        }
        (None, Mode::Create) => {
            field_errors.push(("name", "Missing field name".to_string()));
            None
        }
        (None, Mode::Update) => None,
    };
    let rules = match top.rules {
        None => None,
        Some(raw) => match object_list(raw, flags) {
            Ok(read) => Some((raw, read)),
            Err(e) => {
                field_errors.push(("rules", e));
                None
            }
        },
    };
    let space_guids = string_list(top.space_guids, "space_guids", &mut field_errors);
    let staging_space_guids = string_list(top.staging_space_guids, "staging_space_guids", &mut field_errors);
    if !field_errors.is_empty() {
        let text: Vec<String> = field_errors
            .iter()
            .map(|(f, e)| format!("Field: {f}, Error: {e}"))
            .collect();
        return Err(CfError::MessageParse(text.join(", ")));
    }
    let mut invalid: Vec<String> = name.as_deref().map(name::errors).unwrap_or_default();
    let rules = rules.map(|(raw, read)| {
        if ruby_json_len(raw.get()) > MAX_RULES_CHARS {
            invalid.push(format!("rules length must not exceed {MAX_RULES_CHARS} characters"));
        }
        invalid.extend(read.invalid);
        read.rules
    });
    if !invalid.is_empty() {
        return Err(CfError::SecurityGroupInvalid(invalid));
    }
    Ok(GroupBody {
        name,
        rules,
        space_guids,
        staging_space_guids,
    })
}

/// Parse and validate a bare JSON array of CF rules (the `translate` input),
/// with the same messages as the `rules` field of a body.
pub fn parse_rules(body: &[u8], flags: CfFlags) -> Result<Vec<Rule>, CfError> {
    let mut rules = Vec::with_capacity(list_room(body.len()));
    each_rule(body, flags, |rule| rules.push(rule))?;
    Ok(rules)
}

/// [`parse_rules`], handing each valid rule to `sink` as it is read (a
/// caller that maps rules one by one holds no list of them). The result is
/// only good when this returns `Ok`: an error may be found after rules were
/// handed over.
pub fn each_rule(body: &[u8], flags: CfFlags, mut sink: impl FnMut(Rule)) -> Result<(), CfError> {
    // Read as `str` when the body is UTF-8 (one check of the whole body is
    // cheaper than serde_json's check of every string read from bytes);
    // otherwise as bytes, for serde_json's own error.
    let read = match std::str::from_utf8(body) {
        Ok(text) => read_all(serde_json::Deserializer::from_str(text), flags, &mut sink),
        Err(_) => read_all(serde_json::Deserializer::from_slice(body), flags, &mut sink),
    };
    let invalid = read
        .map_err(|e| CfError::MessageParse(e.to_string()))?
        .map_err(|e| field_error("rules", e))?;
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(CfError::SecurityGroupInvalid(invalid))
    }
}

/// Room for the rules of a list of `json_len` bytes: the shortest useful
/// rule, `{"protocol":"all","destination":"::"}`, is 38 bytes (a big body
/// would otherwise be copied through every doubling).
pub fn list_room(json_len: usize) -> usize {
    json_len / 38
}

/// A `rules` list read and validated.
struct RulesRead {
    rules: Vec<Rule>,
    /// CC's model messages (`rules rule number N …`).
    invalid: Vec<String>,
}

/// A `rules` list read and validated in one pass (each element is checked as
/// it is read and, when valid, handed to `sink`, so the list's fields are
/// never all held at once): CC's model messages (`rules rule number N …`), or
/// the message layer's error for a value that is not a list of objects (which
/// CC reports instead of any rule's errors).
fn read_rules<'de, D: serde::Deserializer<'de>>(
    d: D,
    flags: CfFlags,
    sink: &mut impl FnMut(Rule),
) -> Result<Result<Vec<String>, String>, D::Error> {
    let (mut invalid, mut not_objects) = (Vec::new(), Vec::new());
    let (mut capped, mut capped_not_objects) = (crate::dialect::Capped::default(), crate::dialect::Capped::default());
    let other = crate::json::each_object(d, |i, element| match element {
        Ok(fields) => {
            validate_rule(i, fields, flags, sink, &mut invalid);
            capped.trim(&mut invalid);
        }
        Err(other) => {
            not_objects.push(format!("At index {i}: {}", class_error("Hash", &other)));
            capped_not_objects.trim(&mut not_objects);
        }
    })?;
    capped.close(&mut invalid);
    capped_not_objects.close(&mut not_objects);
    Ok(match other {
        Some(other) => Err(list_class_error(&other)),
        None if !not_objects.is_empty() => Err(not_objects.join(", ")),
        None => Ok(invalid),
    })
}

fn field_error(field: &str, error: String) -> CfError {
    CfError::MessageParse(format!("Field: {field}, Error: {error}"))
}

fn decode(body: &[u8]) -> Result<TopLevel<'_>, CfError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CfError::MessageParse("Decoded JSON cannot be nil".into()));
    }
    let top: TopLevel = serde_json::from_slice(body).map_err(|e| CfError::MessageParse(e.to_string()))?;
    match top.not_object {
        None => Ok(top),
        Some("nil") => Err(CfError::MessageParse("Decoded JSON cannot be nil".into())),
        // CC answers these with a 500; a parse error is the honest answer.
        Some(class) => Err(CfError::MessageParse(format!(
            "Expected instance of Hash, given instance of {class}"
        ))),
    }
}

/// Membrane's `Class` schema message (note: "an instance").
fn class_error(expected: &str, got: &Scalar) -> String {
    format!(
        "Expected instance of {expected}, given an instance of {}",
        got.ruby_class()
    )
}

/// Membrane's `List` schema message (note: no "an").
fn list_class_error(got: &Scalar) -> String {
    format!("Expected instance of Array, given instance of {}", got.ruby_class())
}

fn object_list(raw: &RawValue, flags: CfFlags) -> Result<RulesRead, String> {
    let mut rules = Vec::with_capacity(list_room(raw.get().len()));
    match read_all(serde_json::Deserializer::from_str(raw.get()), flags, &mut |rule| {
        rules.push(rule)
    }) {
        Ok(Ok(invalid)) => Ok(RulesRead { rules, invalid }),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.to_string()),
    }
}

/// [`read_rules`] over the whole of `json`'s input.
fn read_all<'de, R: serde_json::de::Read<'de>>(
    mut json: serde_json::Deserializer<R>,
    flags: CfFlags,
    sink: &mut impl FnMut(Rule),
) -> Result<Result<Vec<String>, String>, serde_json::Error> {
    read_rules(&mut json, flags, sink).and_then(|read| json.end().map(|()| read))
}

fn string_list(list: Option<ScalarList>, field: &'static str, errors: &mut Vec<(&str, String)>) -> Option<Vec<String>> {
    match list? {
        ScalarList::Other(other) => {
            errors.push((field, list_class_error(&other)));
            None
        }
        ScalarList::List(items) => {
            let mut bad = Vec::new();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Scalar::Str(s) => out.push(s.into_string()),
                    other => bad.push(format!("At index {i}: {}", class_error("String", &other))),
                }
            }
            if bad.is_empty() {
                Some(out)
            } else {
                errors.push((field, bad.join(", ")));
                None
            }
        }
    }
}

pub(crate) fn validate_rules(list: &[crate::json::Fields], flags: CfFlags, invalid: &mut Vec<String>) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(list.len());
    let mut capped = crate::dialect::Capped::default();
    for (i, fields) in list.iter().enumerate() {
        validate_rule(i, fields, flags, &mut |rule| rules.push(rule), invalid);
        capped.trim(invalid);
    }
    capped.close(invalid);
    rules
}

/// The rule at (0-based) `index`, or its errors.
fn validate_rule(
    index: usize,
    fields: &crate::json::Fields,
    flags: CfFlags,
    sink: &mut impl FnMut(Rule),
    invalid: &mut Vec<String>,
) {
    match rule::parse(fields, flags) {
        Ok(r) => sink(r),
        Err(errs) => invalid.extend(errs.iter().map(|e| format!("rules rule number {} {e}", index + 1))),
    }
}

/// The length in characters of the rules as Ruby's `JSON.generate` would write
/// them (CC checks the serialised column): whitespace outside strings is
/// dropped, escapes are counted as Ruby emits them. Numbers keep their spelling.
pub(crate) fn ruby_json_len(raw: &str) -> usize {
    let mut len = 0;
    let mut chars = raw.chars();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if !in_string {
            if !c.is_ascii_whitespace() {
                len += 1;
                in_string = c == '"';
            }
            continue;
        }
        len += match c {
            '"' => {
                in_string = false;
                1
            }
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    match u32::from_str_radix(&hex, 16) {
                        Ok(0x22 | 0x5c | 0x08 | 0x0c | 0x0a | 0x0d | 0x09) => 2,
                        Ok(n) if n < 0x20 => 6,
                        // A high surrogate's pair follows as its own escape; count the pair once.
                        Ok(0xdc00..=0xdfff) => 0,
                        _ => 1,
                    }
                }
                Some('/') => 1,
                _ => 2,
            },
            _ => 1,
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str, mode: Mode) -> String {
        parse(body.as_bytes(), mode, CfFlags::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn message_layer_wording() {
        assert_eq!(
            err(r#"{"rules":[]}"#, Mode::Create),
            "Request invalid due to parse error: Field: name, Error: Missing field name"
        );
        assert_eq!(
            err(r#"{"name":"x","rules":{"valid":"json"}}"#, Mode::Create),
            "Request invalid due to parse error: Field: rules, Error: Expected instance of Array, given instance of Hash"
        );
        assert_eq!(
            err(r#"{"name":"x","rules":["a", {}, 3]}"#, Mode::Create),
            "Request invalid due to parse error: Field: rules, Error: At index 0: Expected instance of Hash, given an instance of String, At index 2: Expected instance of Hash, given an instance of Integer"
        );
        assert_eq!(
            err(r#"{"name":5,"space_guids":"x"}"#, Mode::Update),
            "Request invalid due to parse error: Field: name, Error: Expected instance of String, given an instance of Integer, Field: space_guids, Error: Expected instance of Array, given instance of String"
        );
        assert_eq!(
            err("null", Mode::Update),
            "Request invalid due to parse error: Decoded JSON cannot be nil"
        );
        assert_eq!(
            err("", Mode::Update),
            "Request invalid due to parse error: Decoded JSON cannot be nil"
        );
        assert!(err("{", Mode::Update).starts_with("Request invalid due to parse error: "));
        assert!(err("[]", Mode::Update).contains("Expected instance of Hash"));
    }

    #[test]
    fn nulls_and_unknown_keys_are_dropped() {
        let b = parse(
            br#"{"name":"web","rules":null,"running_default":true,"foo":{"x":[1]}}"#,
            Mode::Create,
            CfFlags::default(),
        )
        .unwrap();
        assert_eq!(b.name.as_deref(), Some("web"));
        assert_eq!(b.rules, None);
        let b = parse(br#"{"name":null}"#, Mode::Update, CfFlags::default()).unwrap();
        assert_eq!(b, GroupBody::default());
    }

    #[test]
    fn model_errors_join_name_and_rules() {
        assert_eq!(
            err(r#"{"name":"","rules":[{"protocol":"tcp"}]}"#, Mode::Create),
            "The security group is invalid: name is not present, name is invalid, rules rule number 1 missing required field 'destination', rules rule number 1 missing required field 'ports'"
        );
    }

    #[test]
    fn ruby_length_counts_like_json_generate() {
        assert_eq!(
            ruby_json_len(r#"[ { "a" : "b\/c\u00e9\n" } ]"#),
            r#"[{"a":"b/cé\n"}]"#.chars().count()
        );
        assert_eq!(ruby_json_len(r#"["\ud83d\ude00"]"#), 5);
    }

    #[test]
    fn a_rule_list_reads_the_same_from_text_and_from_bytes() {
        let text = r#"[{"protocol":"tcp","destination":"10.0.0.1","ports":"443","description":"café"}]"#;
        let rules = parse_rules(text.as_bytes(), CfFlags::default()).unwrap();
        assert_eq!(rules[0].description.as_deref(), Some("café"));
        // Not UTF-8: read as bytes, and refused with serde_json's own message.
        let bytes =
            b"[{\"protocol\":\"tcp\",\"destination\":\"10.0.0.1\",\"ports\":\"443\",\"description\":\"caf\xe9\"}]";
        let err = parse_rules(bytes, CfFlags::default()).unwrap_err().to_string();
        assert!(err.contains("invalid unicode code point at line 1"), "{err}");
    }

    #[test]
    fn oversized_rules_are_refused_with_cc_text() {
        let description = "x".repeat(MAX_RULES_CHARS);
        let body = format!(
            r#"{{"name":"big","rules":[{{"protocol":"all","destination":"0.0.0.0/0","description":"{description}"}}]}}"#
        );
        assert_eq!(
            err(&body, Mode::Create),
            "The security group is invalid: rules length must not exceed 16777215 characters"
        );
    }
}
