//! Typed, shallow JSON access for validators that must report each field's JSON
//! type (both dialects name wrong types per field), without building a
//! `serde_json::Value` tree: nested arrays and objects are skipped, not stored,
//! so parsing stays linear and allocation-light on very large bodies.

use compact_str::CompactString;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// One JSON value with its type kept; containers are recorded, not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    /// An integer literal that fits in an `i64`.
    Int(i64),
    /// An integer literal above `i64::MAX` (still an Integer to Ruby).
    BigInt,
    Float(f64),
    /// Short strings (most rule values: `tcp`, `10.0.0.1`, `443`) are kept inline.
    Str(CompactString),
    Array,
    Object,
}

impl Scalar {
    /// The Ruby class a JSON parser would produce: CC's messages name it.
    pub fn ruby_class(&self) -> &'static str {
        match self {
            Scalar::Null => "NilClass",
            Scalar::Bool(true) => "TrueClass",
            Scalar::Bool(false) => "FalseClass",
            Scalar::Int(_) | Scalar::BigInt => "Integer",
            Scalar::Float(_) => "Float",
            Scalar::Str(_) => "String",
            Scalar::Array => "Array",
            Scalar::Object => "Hash",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::BigInt, Scalar::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(CompactString::from(v)))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(CompactString::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A key of an object: the keys either dialect knows are shared statics, so
/// reading a rule allocates no key (a 16 MB body holds about a million).
type Key = Cow<'static, str>;

/// The shared static for a rule key of either dialect (a `match` on the text
/// compiles to a switch on its length and one comparison).
fn key(text: &str) -> Key {
    let known = match text {
        "protocol" => "protocol",
        "destination" => "destination",
        "ports" => "ports",
        "type" => "type",
        "code" => "code",
        "log" => "log",
        "description" => "description",
        "direction" => "direction",
        "ethertype" => "ethertype",
        "port_range_min" => "port_range_min",
        "port_range_max" => "port_range_max",
        "remote_ip_prefix" => "remote_ip_prefix",
        "remote_group_id" => "remote_group_id",
        "name" => "name",
        "id" => "id",
        other => return Cow::Owned(other.to_owned()),
    };
    Cow::Borrowed(known)
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(key(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// The fields of one JSON object in first-seen key order. A repeated key keeps
/// its first position and its last value, as Ruby's and Python's parsers do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(Key, Scalar)>);

impl Fields {
    pub fn get(&self, key: &str) -> Option<&Scalar> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Scalar)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Below this many keys a linear scan finds repeats faster than a hash map.
const SCAN_LIMIT: usize = 16;

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        fill(map, &mut fields)?;
        Ok(fields)
    }
}

/// Reads an object's entries into `fields` (emptied first, its room kept).
fn fill<'de, A: MapAccess<'de>>(mut map: A, fields: &mut Fields) -> Result<(), A::Error> {
    let fields = &mut fields.0;
    fields.clear();
    let mut index: Option<HashMap<Key, usize>> = None;
    while let Some(key) = map.next_key_seed(KeySeed)? {
        let value: Scalar = map.next_value()?;
        let found = match &index {
            Some(ix) => ix.get(&key).copied(),
            None => fields.iter().position(|(k, _)| same_key(k, &key)),
        };
        match found {
            Some(i) => fields[i].1 = value,
            None => {
                if let Some(ix) = &mut index {
                    ix.insert(key.clone(), fields.len());
                }
                fields.push((key, value));
                if index.is_none() && fields.len() > SCAN_LIMIT {
                    index = Some(fields.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
                }
            }
        }
    }
    Ok(())
}

/// Key equality, by address first: known keys are the same statics.
fn same_key(a: &Key, b: &Key) -> bool {
    match (a, b) {
        (Cow::Borrowed(a), Cow::Borrowed(b)) => std::ptr::eq(*a, *b),
        _ => a == b,
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

/// An element of a list that must hold objects: the object, or the type found.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Object(Fields),
    Other(Scalar),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                FieldsVisitor.visit_map(map).map(Element::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                ScalarVisitor.visit_seq(seq).map(Element::Other)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Element, E> {
                Ok(Element::Other(Scalar::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
                Ok(Element::Other(Scalar::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
                ScalarVisitor.visit_u64(v).map(Element::Other)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Element, E> {
                Ok(Element::Other(Scalar::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
                Ok(Element::Other(Scalar::Str(CompactString::from(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
                Ok(Element::Other(Scalar::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON value that must be a list of objects: the elements, or the type found.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectList {
    List(Vec<Element>),
    Other(Scalar),
}

impl<'de> Deserialize<'de> for ObjectList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut items = Vec::new();
        let found = each_object(d, |_, e| {
            items.push(match e {
                Ok(fields) => Element::Object(fields.clone()),
                Err(other) => Element::Other(other),
            })
        })?;
        Ok(match found {
            None => ObjectList::List(items),
            Some(other) => ObjectList::Other(other),
        })
    }
}

/// The visits of a value that is neither a list nor an object, as
/// `Some(scalar)`, for visitors that handle the containers themselves.
macro_rules! other_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Scalar>, E> {
            Ok(Some(Scalar::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Scalar>, E> {
            Ok(Some(Scalar::Int(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Scalar>, E> {
            ScalarVisitor.visit_u64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Scalar>, E> {
            Ok(Some(Scalar::Float(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Scalar>, E> {
            Ok(Some(Scalar::Str(CompactString::from(v))))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<Scalar>, E> {
            Ok(Some(Scalar::Null))
        }
    };
}

/// Reads a value that must be a list of objects, handing each element to
/// `each` (with its index) as soon as it is read: the object's fields, or the
/// value found instead. Each object is read into one buffer reused for every
/// element, so a caller that keeps only what it makes of an element never
/// holds the list (a 16 MB rule list is ~300,000 objects). Returns `None`
/// when the value was a list, else the value found.
pub fn each_object<'de, D, F>(d: D, each: F) -> Result<Option<Scalar>, D::Error>
where
    D: Deserializer<'de>,
    F: FnMut(usize, Result<&Fields, Scalar>),
{
    /// Reads one element: `None` when it was an object (now in the buffer).
    struct Seed<'b>(&'b mut Fields);
    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Option<Scalar>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Scalar>, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Option<Scalar>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Scalar>, A::Error> {
            fill(map, self.0).map(|()| None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Scalar>, A::Error> {
            ScalarVisitor.visit_seq(seq).map(Some)
        }
        other_scalars!();
    }
    struct V<F>(F);
    impl<'de, F: FnMut(usize, Result<&Fields, Scalar>)> Visitor<'de> for V<F> {
        type Value = Option<Scalar>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<Scalar>, A::Error> {
            let mut buffer = Fields::default();
            let mut i = 0;
            while let Some(found) = seq.next_element_seed(Seed(&mut buffer))? {
                match found {
                    None => (self.0)(i, Ok(&buffer)),
                    Some(other) => (self.0)(i, Err(other)),
                }
                i += 1;
            }
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Scalar>, A::Error> {
            ScalarVisitor.visit_map(map).map(Some)
        }
        other_scalars!();
    }
    d.deserialize_any(V(each))
}

/// A JSON value that must be a list of scalars (e.g. guid lists).
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarList {
    List(Vec<Scalar>),
    Other(Scalar),
}

impl<'de> Deserialize<'de> for ScalarList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScalarList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScalarList, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<Scalar>()? {
                    out.push(e);
                }
                Ok(ScalarList::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ScalarList, A::Error> {
                ScalarVisitor.visit_map(map).map(ScalarList::Other)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarList, E> {
                Ok(ScalarList::Other(Scalar::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarList, E> {
                Ok(ScalarList::Other(Scalar::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarList, E> {
                ScalarVisitor.visit_u64(v).map(ScalarList::Other)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarList, E> {
                Ok(ScalarList::Other(Scalar::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarList, E> {
                Ok(ScalarList::Other(Scalar::Str(CompactString::from(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarList, E> {
                Ok(ScalarList::Other(Scalar::Null))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_first_position_and_last_value() {
        let f: Fields = serde_json::from_str(r#"{"a":1,"b":"x","a":true}"#).unwrap();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(f.get("a"), Some(&Scalar::Bool(true)));
    }

    #[test]
    fn each_object_reads_every_element_afresh() {
        let mut seen = Vec::new();
        let json = r#"[{"protocol":"tcp","x":1,"protocol":"udp"},{"ports":"80"},3,{}]"#;
        let found = each_object(&mut serde_json::Deserializer::from_str(json), |i, e| {
            seen.push(match e {
                Ok(fields) => format!("{i}: {:?}", fields.iter().collect::<Vec<_>>()),
                Err(other) => format!("{i}: {}", other.ruby_class()),
            })
        })
        .unwrap();
        assert_eq!(found, None);
        assert_eq!(
            seen,
            [
                r#"0: [("protocol", Str("udp")), ("x", Int(1))]"#,
                r#"1: [("ports", Str("80"))]"#,
                "2: Integer",
                "3: []",
            ]
        );
        let found = each_object(&mut serde_json::Deserializer::from_str(r#"{"a":[]}"#), |_, _| panic!()).unwrap();
        assert_eq!(found, Some(Scalar::Object));
    }

    #[test]
    fn many_keys_switch_to_the_index() {
        let body: String = (0..40).map(|i| format!("\"k{}\":{i},", i % 20)).collect();
        let f: Fields = serde_json::from_str(&format!("{{{}\"z\":null}}", body)).unwrap();
        assert_eq!(f.len(), 21);
        assert_eq!(f.get("k3"), Some(&Scalar::Int(23)));
    }

    #[test]
    fn scalars_know_their_ruby_class() {
        let v: Vec<Scalar> =
            serde_json::from_str(r#"[1, 8.0, "s", null, true, [1,[2]], {"a":{}}, 99999999999999999999]"#).unwrap();
        let classes: Vec<_> = v.iter().map(Scalar::ruby_class).collect();
        assert_eq!(
            classes,
            [
                "Integer",
                "Float",
                "String",
                "NilClass",
                "TrueClass",
                "Array",
                "Hash",
                "Float"
            ]
        );
        let big: Scalar = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(big, Scalar::BigInt);
    }

    #[test]
    fn object_lists_report_non_objects() {
        let l: ObjectList = serde_json::from_str(r#"[{"a":1}, "x"]"#).unwrap();
        let ObjectList::List(items) = l else { panic!() };
        assert!(matches!(items[0], Element::Object(_)));
        assert_eq!(items[1], Element::Other(Scalar::Str("x".into())));
        assert_eq!(
            serde_json::from_str::<ObjectList>("{}").unwrap(),
            ObjectList::Other(Scalar::Object)
        );
    }
}
