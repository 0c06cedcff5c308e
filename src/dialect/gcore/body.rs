//! Gcore v2 request bodies, parsed into model terms: create, PATCH (omitted
//! `rules` vs `[]` vs a list; `tags` as a JSON Merge Patch) and
//! `POST …/rules`, validated field by field.

use super::error::{GcoreError, InvalidFields};
use super::rule::{self, check_atom, opens_smtp, ApiVersion, RulePath, SMTP_BLOCKED};
use crate::json::{Element, Fields, ObjectList, Scalar};
use crate::model::{Atom, TagPatch};

/// A v2 create: `rules: None` asks for the default template, `Some(vec![])`
/// for no rules.
#[derive(Debug, Clone, PartialEq)]
pub struct GcoreCreate {
    pub name: String,
    pub description: Option<String>,
    pub rules: Option<Vec<Atom>>,
    pub tags: Vec<(String, String)>,
}

/// A v2 PATCH; `None` leaves a field as it is, `rules` is the full new set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GcorePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub rules: Option<Vec<Atom>>,
    pub tags: TagPatch,
}

/// Account-level policy the parser enforces as Gcore does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcoreFlags {
    /// Gcore refuses egress TCP/UDP rules covering port 25 unless support lifted it.
    pub smtp_blocked: bool,
    /// Most rules one body may list (Gcore's PATCH takes at most 250).
    pub max_rules: usize,
}

impl Default for GcoreFlags {
    fn default() -> Self {
        GcoreFlags {
            smtp_blocked: true,
            max_rules: 250,
        }
    }
}

/// Gcore's cap on names and descriptions, in characters (Neutron's columns).
pub const MAX_TEXT: usize = 255;

/// The most tags one body may set: a gateway limit, so a body cannot make a
/// group carry more tags than any caller needs.
pub const MAX_TAGS: usize = 100;

/// Gcore's cap on tag keys and values, in characters.
pub const MAX_TAG_LEN: usize = 255;

const NAME_PATTERN_MESSAGE: &str = "String does not match expected pattern.";

/// Gcore's PATCH name pattern `^[a-zA-Z0-9][a-zA-Z 0-9._\-]{1,61}[a-zA-Z0-9._]$`.
pub fn valid_patch_name(name: &str) -> bool {
    let b = name.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    (3..=63).contains(&b.len())
        && first.is_ascii_alphanumeric()
        && (last.is_ascii_alphanumeric() || matches!(last, b'.' | b'_'))
        && b[1..b.len() - 1]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b' ' | b'.' | b'_' | b'-'))
}

struct Errors {
    fields: InvalidFields,
    /// Whole-rule problems (Neutron and policy checks), first one leads the message.
    rules: Vec<(String, String)>,
}

impl Errors {
    fn new() -> Self {
        Errors {
            fields: InvalidFields::new(),
            rules: Vec::new(),
        }
    }

    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields.entry(field.to_string()).or_default().push(message.into());
    }

    fn finish(self) -> Result<(), GcoreError> {
        if !self.fields.is_empty() {
            return Err(GcoreError::fields(self.fields));
        }
        let Some((_, first)) = self.rules.first() else {
            return Ok(());
        };
        let mut invalid_fields = InvalidFields::new();
        for (path, message) in &self.rules {
            invalid_fields.entry(path.clone()).or_default().push(message.clone());
        }
        Err(GcoreError::Validation {
            message: first.clone(),
            invalid_fields,
        })
    }
}

fn decode(body: &[u8]) -> Result<Fields, GcoreError> {
    match serde_json::from_slice::<Element>(body) {
        Ok(Element::Object(fields)) => Ok(fields),
        Ok(Element::Other(_)) => Err(GcoreError::validation("Invalid input type: expected a JSON object.")),
        Err(e) => Err(GcoreError::validation(format!("Invalid JSON: {e}"))),
    }
}

pub fn parse_create(body: &[u8], flags: GcoreFlags) -> Result<GcoreCreate, GcoreError> {
    let top = decode_top(body)?;
    let mut errs = Errors::new();
    unknown_keys(&top, &mut errs);
    let name = required_name(top.name.as_ref(), &mut errs);
    let description = optional_string(top.description.as_ref(), "description", &mut errs);
    let rules = top.rules.map(|r| rules_list(r, flags, &mut errs));
    let tags = match top.tags {
        None | Some(Element::Other(Scalar::Null)) => Vec::new(),
        Some(Element::Object(fields)) => tag_pairs(&fields, false, &mut errs)
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        Some(Element::Other(_)) => {
            errs.add("tags", "Not a valid mapping type.");
            Vec::new()
        }
    };
    errs.finish()?;
    Ok(GcoreCreate {
        name: name.unwrap_or_default(),
        description,
        rules: rules.flatten(),
        tags,
    })
}

pub fn parse_patch(body: &[u8], flags: GcoreFlags) -> Result<GcorePatch, GcoreError> {
    let top = decode_top(body)?;
    let mut errs = Errors::new();
    unknown_keys(&top, &mut errs);
    let name = match &top.name {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) if valid_patch_name(s) => Some(s.to_string()),
        Some(Scalar::Str(_)) => {
            errs.add("name", NAME_PATTERN_MESSAGE);
            None
        }
        Some(_) => {
            errs.add("name", "Not a valid string.");
            None
        }
    };
    let description = optional_string(top.description.as_ref(), "description", &mut errs);
    let rules = top.rules.map(|r| rules_list(r, flags, &mut errs));
    let tags = match top.tags {
        None => TagPatch::Keep,
        Some(Element::Other(Scalar::Null)) => TagPatch::RemoveAll,
        Some(Element::Object(fields)) => TagPatch::Merge(tag_pairs(&fields, true, &mut errs)),
        Some(Element::Other(_)) => {
            errs.add("tags", "Not a valid mapping type.");
            TagPatch::Keep
        }
    };
    errs.finish()?;
    Ok(GcorePatch {
        name,
        description,
        rules: rules.flatten(),
        tags,
    })
}

/// `POST …/{group_id}/rules`: one rule object.
pub fn parse_rule(body: &[u8], api: ApiVersion, flags: GcoreFlags) -> Result<Atom, GcoreError> {
    let fields = decode(body)?;
    let mut errs = Errors::new();
    let atom = one_rule(&fields, RulePath::Body, api, flags, &mut errs);
    errs.finish()?;
    atom.ok_or(GcoreError::Internal)
}

/// `POST …/{group_id}/copy`: `{"name": "…"}`, the copy's name.
pub fn parse_copy(body: &[u8]) -> Result<String, GcoreError> {
    let fields = decode(body)?;
    let mut errs = Errors::new();
    for key in fields.keys().filter(|k| *k != "name") {
        errs.add(key, "Unknown field.");
    }
    let name = required_name(fields.get("name"), &mut errs);
    errs.finish()?;
    name.ok_or(GcoreError::Internal)
}

/// A bare JSON array of rules (the `translate` input), checked like `rules`.
pub fn parse_rule_list(body: &[u8], flags: GcoreFlags) -> Result<Vec<Atom>, GcoreError> {
    let mut reader = RuleReader::new(flags, body.len());
    // As `str` when the body is UTF-8: one check of the whole body is cheaper
    // than serde_json's check of every string it reads from bytes.
    let found = match std::str::from_utf8(body) {
        Ok(text) => read_list(serde_json::Deserializer::from_str(text), &mut reader),
        Err(_) => read_list(serde_json::Deserializer::from_slice(body), &mut reader),
    }
    .map_err(|e| GcoreError::validation(format!("Invalid JSON: {e}")))?;
    let mut errs = Errors::new();
    let atoms = reader.finish(found, &mut errs);
    errs.finish()?;
    atoms.ok_or(GcoreError::Internal)
}

/// Every element of the list that is `json`'s whole input, through `reader`;
/// the value found instead of a list, if any.
fn read_list<'de, R: serde_json::de::Read<'de>>(
    mut json: serde_json::Deserializer<R>,
    reader: &mut RuleReader,
) -> Result<Option<Scalar>, serde_json::Error> {
    let found = crate::json::each_object(&mut json, |i, element| reader.element(i, element))?;
    json.end().map(|()| found)
}

/// A create or PATCH body, read in one pass: the four known fields typed but
/// not yet validated, unknown keys recorded (first-seen order; a repeated key
/// keeps its last value, as for every object here).
#[derive(Default)]
struct Top {
    name: Option<Scalar>,
    description: Option<Scalar>,
    rules: Option<ObjectList>,
    tags: Option<Element>,
    unknown: Vec<String>,
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut top = Top::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => top.name = Some(map.next_value()?),
                        "description" => top.description = Some(map.next_value()?),
                        "rules" => top.rules = Some(map.next_value()?),
                        "tags" => top.tags = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            if !top.unknown.contains(&key) {
                                top.unknown.push(key);
                            }
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_any(V)
    }
}

fn decode_top(body: &[u8]) -> Result<Top, GcoreError> {
    serde_json::from_slice::<Top>(body).map_err(|e| {
        // Every field accepts any JSON, so a data error can only be the top-level type.
        if e.is_data() {
            GcoreError::validation("Invalid input type: expected a JSON object.")
        } else {
            GcoreError::validation(format!("Invalid JSON: {e}"))
        }
    })
}

fn unknown_keys(top: &Top, errs: &mut Errors) {
    for key in &top.unknown {
        errs.add(key, "Unknown field.");
    }
}

/// A required, non-empty `name`.
fn required_name(value: Option<&Scalar>, errs: &mut Errors) -> Option<String> {
    let problem = match value {
        Some(Scalar::Str(s)) if !s.is_empty() && !too_long(s) => return Some(s.to_string()),
        None => "Missing data for required field.",
        Some(Scalar::Str(s)) if too_long(s) => "Longer than maximum length 255.",
        Some(Scalar::Str(_)) => "Shorter than minimum length 1.",
        Some(Scalar::Null) => "Field may not be null.",
        Some(_) => "Not a valid string.",
    };
    errs.add("name", problem);
    None
}

fn too_long(s: &str) -> bool {
    s.chars().count() > MAX_TEXT
}

fn optional_string(value: Option<&Scalar>, key: &str, errs: &mut Errors) -> Option<String> {
    match value {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) if too_long(s) => {
            errs.add(key, format!("Longer than maximum length {MAX_TEXT}."));
            None
        }
        Some(Scalar::Str(s)) => Some(s.to_string()),
        Some(_) => {
            errs.add(key, "Not a valid string.");
            None
        }
    }
}

fn rules_list(list: ObjectList, flags: GcoreFlags, errs: &mut Errors) -> Option<Vec<Atom>> {
    let mut reader = RuleReader::new(flags, 0);
    let found = match list {
        ObjectList::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Element::Object(fields) => reader.element(i, Ok(&fields)),
                    Element::Other(other) => reader.element(i, Err(other)),
                }
            }
            None
        }
        ObjectList::Other(other) => Some(other),
    };
    reader.finish(found, errs)
}

/// A `rules` list checked element by element as it is read. Past the cap,
/// elements are only counted: the list is refused whole.
struct RuleReader {
    flags: GcoreFlags,
    atoms: Vec<Atom>,
    errs: Errors,
    count: usize,
}

impl RuleReader {
    /// `json_len` sizes the list up front (a big body would otherwise be
    /// copied through every doubling).
    fn new(flags: GcoreFlags, json_len: usize) -> Self {
        // The shortest rule, `{"direction":"egress"}`, is 22 bytes.
        let room = (json_len / 22).min(flags.max_rules.saturating_add(1));
        RuleReader {
            flags,
            atoms: Vec::with_capacity(room),
            errs: Errors::new(),
            count: 0,
        }
    }

    fn element(&mut self, i: usize, element: Result<&Fields, Scalar>) {
        self.count = i + 1;
        if self.count > self.flags.max_rules {
            return;
        }
        let path = RulePath::Index(i);
        match element {
            Ok(fields) => {
                let atom = one_rule(fields, path, ApiVersion::V2, self.flags, &mut self.errs);
                self.atoms.extend(atom);
            }
            Err(_) => self.errs.add(&path.label(), "Invalid input type."),
        }
    }

    /// The atoms, or `None` with the list's errors added to `errs`; `found` is
    /// the value read when it was not a list.
    fn finish(self, found: Option<Scalar>, errs: &mut Errors) -> Option<Vec<Atom>> {
        match found {
            Some(Scalar::Null) => errs.add("rules", "Field may not be null."),
            Some(_) => errs.add("rules", "Not a valid list."),
            None if self.count > self.flags.max_rules => {
                errs.add("rules", format!("Longer than maximum length {}.", self.flags.max_rules));
            }
            None => {
                for (field, messages) in self.errs.fields {
                    errs.fields.entry(field).or_default().extend(messages);
                }
                errs.rules.extend(self.errs.rules);
                return Some(self.atoms);
            }
        }
        None
    }
}

fn one_rule(fields: &Fields, path: RulePath, api: ApiVersion, flags: GcoreFlags, errs: &mut Errors) -> Option<Atom> {
    match rule::parse(fields, path, api, &mut errs.fields)? {
        Err(message) => {
            errs.rules.push((path.label(), message));
            None
        }
        Ok(atom) => {
            let policy = check_atom(&atom)
                .err()
                .or_else(|| (flags.smtp_blocked && opens_smtp(&atom)).then(|| SMTP_BLOCKED.to_string()));
            match policy {
                Some(message) => {
                    errs.rules.push((path.label(), message));
                    None
                }
                None => Some(atom),
            }
        }
    }
}

fn tag_text_error(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("must not be empty")
    } else if text.chars().count() > MAX_TAG_LEN {
        Some("must be at most 255 characters")
    } else if text.chars().any(|c| c.is_whitespace() || c == '=') {
        Some("must not contain spaces, tabs, newlines or '='")
    } else {
        None
    }
}

/// Tag entries; `null` values are deletions and allowed only in a PATCH.
fn tag_pairs(fields: &Fields, nulls_delete: bool, errs: &mut Errors) -> Vec<(String, Option<String>)> {
    if fields.len() > MAX_TAGS {
        errs.add("tags", format!("At most {MAX_TAGS} tags may be set at once."));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(fields.len());
    for (key, value) in fields.iter() {
        let path = format!("tags.{key}");
        if let Some(e) = tag_text_error(key) {
            errs.add(&path, format!("Tag key {e}."));
            continue;
        }
        match value {
            Scalar::Null if nulls_delete => out.push((key.to_string(), None)),
            Scalar::Str(v) => match tag_text_error(v) {
                Some(e) => errs.add(&path, format!("Tag value {e}.")),
                None => out.push((key.to_string(), Some(v.to_string()))),
            },
            _ => errs.add(&path, "Not a valid string."),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_list_reads_the_same_from_text_and_from_bytes() {
        let flags = GcoreFlags {
            smtp_blocked: true,
            max_rules: usize::MAX,
        };
        let text = r#"[{"direction":"egress","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"10.0.0.1/32","description":"café"}]"#;
        let atoms = parse_rule_list(text.as_bytes(), flags).unwrap();
        assert_eq!(atoms[0].description.as_deref(), Some("café"));
        // Not UTF-8: read as bytes, and refused with serde_json's own message.
        let bytes = b"[{\"direction\":\"egress\",\"description\":\"caf\xe9\"}]";
        let err = parse_rule_list(bytes, flags).unwrap_err().to_string();
        assert!(err.contains("invalid unicode code point at line 1"), "{err}");
    }

    #[test]
    fn rules_absent_empty_and_listed_differ() {
        let f = GcoreFlags::default();
        assert_eq!(parse_patch(br#"{"name":"abc"}"#, f).unwrap().rules, None);
        assert_eq!(parse_patch(br#"{"rules":[]}"#, f).unwrap().rules, Some(vec![]));
        let one = parse_patch(br#"{"rules":[{"direction":"ingress","protocol":"tcp"}]}"#, f).unwrap();
        assert_eq!(one.rules.unwrap().len(), 1);
        assert!(parse_patch(br#"{"rules":null}"#, f).is_err());
        assert_eq!(parse_create(br#"{"name":"x"}"#, f).unwrap().rules, None);
    }

    #[test]
    fn tags_merge_patch() {
        let f = GcoreFlags::default();
        let p = parse_patch(br#"{"tags":{"owner":"cf","stale":null}}"#, f).unwrap();
        assert_eq!(
            p.tags,
            TagPatch::Merge(vec![("owner".into(), Some("cf".into())), ("stale".into(), None)])
        );
        assert_eq!(parse_patch(br#"{"tags":null}"#, f).unwrap().tags, TagPatch::RemoveAll);
        assert_eq!(parse_patch(br#"{}"#, f).unwrap().tags, TagPatch::Keep);
        let e = parse_patch(br#"{"tags":{"bad key":"v"}}"#, f).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(parse_create(br#"{"name":"x","tags":{"k":null}}"#, f).is_err());
    }

    #[test]
    fn name_pattern_on_patch() {
        assert!(valid_patch_name("tf-test-sg-renamed"));
        assert!(valid_patch_name("my security_group.1"));
        assert!(!valid_patch_name("ab"));
        assert!(!valid_patch_name("-abc"));
        assert!(!valid_patch_name("abc-"));
        assert!(!valid_patch_name(&"a".repeat(64)));
        assert!(parse_patch(br#"{"name":"a/b/c"}"#, GcoreFlags::default()).is_err());
    }

    #[test]
    fn policy_errors_use_gcore_messages() {
        let e = parse_patch(
            br#"{"rules":[{"direction":"egress","protocol":"tcp"}]}"#,
            GcoreFlags::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), SMTP_BLOCKED);
        let ok = parse_patch(
            br#"{"rules":[{"direction":"egress","protocol":"tcp"}]}"#,
            GcoreFlags {
                smtp_blocked: false,
                ..GcoreFlags::default()
            },
        );
        assert!(ok.is_ok());
        let e = parse_create(
            br#"{"name":"x","rules":[{"direction":"egress","protocol":"icmp","ethertype":"IPv6"}]}"#,
            GcoreFlags::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("Protocol icmp is prohibited"));
    }

    #[test]
    fn wrong_types_are_field_errors() {
        let e = parse_create(br#"{"name":1,"rules":{},"extra":true}"#, GcoreFlags::default()).unwrap_err();
        let GcoreError::Validation { invalid_fields, .. } = e else {
            panic!()
        };
        assert!(invalid_fields.contains_key("name"));
        assert!(invalid_fields.contains_key("rules"));
        assert!(invalid_fields.contains_key("extra"));
        assert!(parse_create(b"[1]", GcoreFlags::default()).is_err());
        assert!(parse_create(b"{", GcoreFlags::default()).is_err());
    }
}
