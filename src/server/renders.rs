//! Rendered group bodies, cached by what they were rendered from, so reads
//! serve bytes rendered once per group state instead of folding and
//! formatting every rule on every request.
//!
//! The key is the view (CF v2, CF v3, Gcore), the scope, the group id and a
//! hash of the whole group (aHash), so any change is a new key whatever the
//! backend does with revisions and rule ids. Hashing a large group is what
//! a hit costs, so each group's last rendering is also kept beside the very
//! content it came from: a backend that hands out the same shared content
//! (the embedded one, copy on write) is served after a pointer comparison
//! (the kept `Arc` keeps that content alive, so its address cannot be
//! reused by another). Entries are bounded by their size in bytes, the kept
//! content counted too: once the backend lets a group go (deleted, or
//! changed), that content lives on here alone. A cache
//! belongs to one config (a reload starts a new one), since flags such as
//! CC's `enable_comma_delimited_destinations` change what is rendered.

use crate::model::{Content, Group, GroupId, GroupMeta, Scope};
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
    /// The body as sent: shared, not copied, per response.
    body: std::sync::OnceLock<bytes::Bytes>,
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
            body: std::sync::OnceLock::new(),
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
        self.body
            .get_or_init(|| bytes::Bytes::copy_from_slice(self.json.get().as_bytes()))
            .clone()
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

/// A group's last rendering for a view, with what it was rendered from.
#[derive(Clone)]
struct Last {
    meta: GroupMeta,
    content: Content,
    rendered: Arc<Rendered>,
}

impl Last {
    /// Whether `group` is the very state this was rendered from.
    fn is(&self, group: &Group) -> bool {
        same_state(&self.meta, &self.content, group)
    }
}

/// Whether `group` is the very state `meta` and `content` were taken from:
/// the same shared content (a pointer comparison, so false for a backend
/// that builds a new one per read) and the same metadata.
pub(super) fn same_state(meta: &GroupMeta, content: &Content, group: &Group) -> bool {
    let same = match (content, &group.content) {
        (Content::Atomic(a), Content::Atomic(b)) => Arc::ptr_eq(a, b),
        (Content::Compact(a), Content::Compact(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    same && *meta == group.meta
}

pub struct Renders {
    cache: Cache<Key, Arc<Rendered>>,
    last: Cache<(View, Scope, GroupId), Last>,
}

fn weight(r: &Rendered) -> u32 {
    let warnings: usize = r.warnings.iter().map(String::len).sum();
    // The JSON, its shared body once sent, the warnings, some overhead.
    u32::try_from(2 * r.json.get().len() + warnings + 64).unwrap_or(u32::MAX)
}

/// What a group's content holds in memory, about: its rules and tags (with
/// their strings) as the model keeps them.
pub(super) fn content_weight(content: &Content) -> usize {
    use std::mem::size_of;
    match content {
        Content::Atomic(a) => {
            let rules: usize = a
                .rules
                .iter()
                .map(|r| size_of::<crate::model::GroupRule>() + r.atom.description.as_ref().map_or(0, String::len))
                .sum();
            let tags: usize = a
                .tags
                .iter()
                .map(|t| size_of::<crate::model::Tag>() + t.key.len() + t.value.len())
                .sum();
            rules + tags
        }
        Content::Compact(c) => {
            let rules: usize = c
                .rules
                .iter()
                .map(|r| size_of::<crate::model::Rule>() + r.description.as_ref().map_or(0, String::len))
                .sum();
            rules + size_of::<crate::model::CfAttrs>() + 64 * (c.attrs.spaces.len() + c.attrs.staging_spaces.len())
        }
    }
}

fn last_weight(l: &Last) -> u32 {
    u32::try_from(weight(&l.rendered) as usize + content_weight(&l.content)).unwrap_or(u32::MAX)
}

impl Renders {
    /// A cache of at most `max_bytes` of rendered JSON.
    pub fn new(max_bytes: u64) -> Renders {
        Renders {
            cache: Cache::builder()
                .max_capacity(max_bytes / 2)
                .weigher(|_, r: &Arc<Rendered>| weight(r))
                .build(),
            // The rendering and the content it keeps alive: shared with the
            // backend while the group lives, held here alone after.
            last: Cache::builder()
                .max_capacity(max_bytes / 2)
                .weigher(|_, l: &Last| last_weight(l))
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
        let slot = (view, scope, group.id().clone());
        if let Some(last) = self.last.get(&slot).filter(|l| l.is(group)) {
            return last.rendered;
        }
        let rendered = self.by_hash(view, scope, group, render);
        let last = Last {
            meta: group.meta.clone(),
            content: group.content.clone(),
            rendered: rendered.clone(),
        };
        self.last.insert(slot, last);
        rendered
    }

    fn by_hash<T: Serialize>(
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

    /// A cache that counts how often it renders.
    struct Counted {
        cache: Renders,
        calls: std::cell::Cell<usize>,
    }

    impl Counted {
        fn new() -> Self {
            Counted {
                cache: Renders::new(1 << 20),
                calls: std::cell::Cell::new(0),
            }
        }

        fn get<T: Serialize>(&self, view: View, g: &Group, render: impl FnOnce(&Group) -> T) -> Arc<Rendered> {
            let scope = Scope {
                project_id: 1,
                region_id: 1,
            };
            self.cache.get(view, scope, g, || {
                self.calls.set(self.calls.get() + 1);
                (render(g), Vec::new())
            })
        }
    }

    #[test]
    fn renders_once_per_state_of_a_group() {
        let counted = Counted::new();
        let calls = &counted.calls;
        let get = |g: &Group| counted.get(View::CfV3, g, |g| g.name().to_string());
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

    #[test]
    fn shared_content_is_recognised_and_new_content_is_not_trusted() {
        let counted = Counted::new();
        let calls = &counted.calls;
        let get = |g: &Group| {
            counted.get(View::Gcore, g, |g| {
                let Content::Compact(c) = &g.content else {
                    unreachable!()
                };
                c.attrs.running_default
            })
        };
        let a = group("a");
        get(&a);
        get(&a.clone()); // the same shared content: no render, no hash
        assert_eq!(calls.get(), 1);
        // The same state in new content (a backend that parses each read):
        // found by its hash, not rendered again.
        let Content::Compact(c) = &a.content else {
            unreachable!()
        };
        let copy = Group {
            content: Content::Compact(Arc::new((**c).clone())),
            ..a.clone()
        };
        get(&copy);
        assert_eq!(calls.get(), 1);
        // Different content under the same meta (revision kept): rendered again.
        let mut changed = (**c).clone();
        changed.attrs.running_default = true;
        let changed = Group {
            content: Content::Compact(Arc::new(changed)),
            ..a.clone()
        };
        assert_eq!(get(&changed).json.get(), "true");
        assert_eq!(calls.get(), 2);
        // And the first state again (its content still shared): its own body.
        assert_eq!(get(&a).json.get(), "false");
    }

    /// Groups let go by the backend live on in the cache alone: what they
    /// hold counts toward the bound (it counted only the rendering, so a
    /// churn of large groups with small renderings grew without end).
    #[test]
    fn the_content_kept_beside_a_rendering_counts_toward_the_bound() {
        let max = 4u64 << 20;
        let cache = Renders::new(max);
        let scope = Scope {
            project_id: 1,
            region_id: 1,
        };
        let rules = crate::dialect::cf::body::parse_rules(
            br#"[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443","description":"a rule kept beside a rendering"}]"#,
            crate::dialect::cf::CfFlags::default(),
        )
        .unwrap();
        let rule = rules[0].clone();
        for i in 0..2_000u128 {
            let mut g = group("big");
            g.meta.id = Uuid::from_random(i);
            g.content = Content::Compact(Arc::new(CompactContent {
                rules: vec![rule.clone(); 500],
                attrs: Default::default(),
            }));
            // A tiny rendering of a large group.
            cache.get(View::CfV2, scope, &g, || (0u8, Vec::new()));
        }
        cache.last.run_pending_tasks();
        let held: usize = cache.last.iter().map(|(_, l)| content_weight(&l.content)).sum();
        assert!(
            held as u64 <= max / 2,
            "{held} bytes of content held against a bound of {}",
            max / 2
        );
        assert!(cache.last.entry_count() > 0);
    }
}
