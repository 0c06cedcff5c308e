//! Rendered group bodies, cached by what they were rendered from, so reads
//! serve bytes rendered once per group state instead of folding and
//! formatting every rule on every request.
//!
//! The key is the view (CF v2, CF v3, Gcore), the scope, the group id and a
//! hash of the whole group (aHash: hashing is what a cache hit costs), so
//! any change is a new key whatever the backend does with revisions and
//! rule ids. Entries are bounded by their size in bytes. A cache
//! belongs to one config (a reload starts a new one), since flags such as
//! CC's `enable_comma_delimited_destinations` change what is rendered.

use crate::model::{Group, GroupId, Scope};
use moka::sync::Cache;
use serde::Serialize;
use serde_json::value::RawValue;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    CfV2,
    CfV3,
    Gcore,
}

/// One group's JSON, and what its rendering had to leave out.
#[derive(Debug)]
pub struct Rendered {
    pub json: Box<RawValue>,
    pub warnings: Vec<String>,
    etag: std::sync::OnceLock<String>,
}

impl Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl Rendered {
    /// A rendering not kept in any cache.
    pub fn new<T: Serialize>(value: &T, warnings: Vec<String>) -> Arc<Rendered> {
        let json = serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Arc::new(Rendered {
            json,
            warnings,
            etag: std::sync::OnceLock::new(),
        })
    }

    /// A strong validator of the exact bytes (FNV-1a, 64 bits), computed once.
    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in self.json.get().as_bytes() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("\"{h:016x}\"")
        })
    }

    pub fn bytes(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(self.json.get().as_bytes())
    }
}

/// A 200 with the rendered bytes and their `ETag`, or a 304 when the
/// caller's `If-None-Match` names it.
pub fn conditional(
    rendered: &Rendered,
    if_none_match: Option<&str>,
    content_type: &'static str,
) -> crate::server::http::Resp {
    use crate::server::http::{empty, raw, with_header};
    let etag = rendered.etag();
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return with_header(empty(http::StatusCode::NOT_MODIFIED), "etag", etag);
    }
    with_header(raw(http::StatusCode::OK, content_type, rendered.bytes()), "etag", etag)
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    view: View,
    scope: Scope,
    id: GroupId,
    state: u64,
}

pub struct Renders {
    cache: Cache<Key, Arc<Rendered>>,
}

impl Renders {
    /// A cache of at most `max_bytes` of rendered JSON.
    pub fn new(max_bytes: u64) -> Renders {
        Renders {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, r: &Arc<Rendered>| {
                    let warnings: usize = r.warnings.iter().map(String::len).sum();
                    u32::try_from(r.json.get().len() + warnings + 64).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The group rendered for `view`: from the cache, or by `render` (JSON
    /// value and warnings) once for this state of the group.
    pub fn get<T: Serialize>(
        &self,
        view: View,
        scope: Scope,
        group: &Group,
        render: impl FnOnce() -> (T, Vec<String>),
    ) -> Arc<Rendered> {
        // The whole group, with a fast hasher: a backend need not move
        // `revision` (or rule ids) on every change, so nothing less is safe.
        let mut h = ahash::AHasher::default();
        group.hash(&mut h);
        let key = Key {
            view,
            scope,
            id: group.id().clone(),
            state: h.finish(),
        };
        if let Some(hit) = self.cache.get(&key) {
            return hit;
        }
        let (value, warnings) = render();
        let rendered = Rendered::new(&value, warnings);
        self.cache.insert(key, rendered.clone());
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CompactContent, Content, GroupMeta, Uuid};

    fn group(name: &str) -> Group {
        let now = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        Group {
            meta: GroupMeta {
                id: Uuid::from_random(7),
                name: name.into(),
                description: String::new(),
                region: String::new(),
                revision: 1,
                created_at: now,
                updated_at: now,
            },
            content: Content::Compact(Arc::new(CompactContent {
                rules: Vec::new(),
                attrs: Default::default(),
            })),
        }
    }

    #[test]
    fn renders_once_per_state_of_a_group() {
        let cache = Renders::new(1 << 20);
        let scope = Scope {
            project_id: 1,
            region_id: 1,
        };
        let calls = std::cell::Cell::new(0);
        let get = |g: &Group| {
            cache.get(View::CfV3, scope, g, || {
                calls.set(calls.get() + 1);
                (g.name().to_string(), Vec::new())
            })
        };
        let a = group("a");
        assert_eq!(get(&a).json.get(), "\"a\"");
        assert_eq!(get(&a).json.get(), "\"a\"");
        // A change moves the revision: rendered again.
        let renamed = Group {
            meta: GroupMeta {
                name: "b".into(),
                revision: 2,
                ..a.meta.clone()
            },
            ..a.clone()
        };
        assert_eq!(get(&renamed).json.get(), "\"b\"");
        assert_eq!(calls.get(), 2);
    }
}
