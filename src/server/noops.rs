//! CF changes that planned to nothing, kept by their exact bytes beside the
//! exact group state they were planned against, so tooling that re-applies
//! the state it wants (the same PUT again and again) is answered after one
//! read and a byte comparison: no parse, no plan, no lock.
//!
//! The answer is the one the full protocol gives. Parsing and planning
//! depend only on the body, the config (a reload makes a new `App`, and
//! with it a new `Noops`) and the group's state; the state is recognised by
//! the backend's shared content (a pointer, see
//! [`crate::backend::Backend::shares_content`]) and its metadata, as the
//! render cache recognises it. A backend that builds new content on every
//! read is never asked the extra read. Like `Service::cf_update`'s answer
//! to an unchanged change while another write holds the group, the answer
//! is ordered at the read.

use super::renders::{content_weight, same_state};
use crate::model::{Content, Group, GroupId, GroupMeta, Scope};
use bytes::Bytes;
use moka::sync::Cache;

/// Bodies larger than this are not kept: a change of that size is rarely
/// repeated, and it would crowd out the many small ones.
const MAX_BODY: usize = 256 << 10;

/// Which front end's change the bytes are (the same bytes mean different
/// changes to a v2 PUT and a v3 PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    CfV2,
    CfV3,
}

#[derive(Clone)]
struct Noop {
    body: Bytes,
    meta: GroupMeta,
    content: Content,
    warnings: Vec<String>,
}

/// The last change that changed nothing, per group and front end.
pub struct Noops {
    last: Cache<(Api, Scope, GroupId), Noop>,
}

fn weight(n: &Noop) -> u32 {
    let warnings: usize = n.warnings.iter().map(String::len).sum();
    // The kept content is shared with the backend while the group lives,
    // and held here alone once it changes: counted as if held alone.
    u32::try_from(n.body.len() + warnings + content_weight(&n.content) + 128).unwrap_or(u32::MAX)
}

impl Noops {
    /// At most about `max_bytes` of bodies and the contents they keep alive.
    pub fn new(max_bytes: u64) -> Noops {
        Noops {
            last: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, n: &Noop| weight(n))
                .build(),
        }
    }

    /// Whether `body` may be a change known to change nothing (one lookup,
    /// one comparison): only then is the group read to make sure.
    pub fn may_know(&self, api: Api, scope: Scope, id: &GroupId, body: &[u8]) -> bool {
        self.last.get(&(api, scope, id.clone())).is_some_and(|n| n.body == body)
    }

    /// The warnings `body` was answered with the last time, when it planned
    /// to nothing against this very state of `group`.
    pub fn known(&self, api: Api, scope: Scope, group: &Group, body: &[u8]) -> Option<Vec<String>> {
        self.last
            .get(&(api, scope, group.id().clone()))
            .filter(|n| n.body == body && same_state(&n.meta, &n.content, group))
            .map(|n| n.warnings)
    }

    /// Keeps that `body` planned to nothing against `group` (the state the
    /// plan read), answered with `warnings`.
    pub fn remember(&self, api: Api, scope: Scope, group: &Group, body: &Bytes, warnings: &[String]) {
        if body.len() > MAX_BODY {
            return;
        }
        let noop = Noop {
            body: body.clone(),
            meta: group.meta.clone(),
            content: group.content.clone(),
            warnings: warnings.to_vec(),
        };
        self.last.insert((api, scope, group.id().clone()), noop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CompactContent, Uuid};
    use std::sync::Arc;

    fn group() -> Group {
        let now = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        Group {
            meta: GroupMeta {
                id: Uuid::from_random(9),
                name: "web".into(),
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
    fn known_only_for_the_same_bytes_api_and_state() {
        let noops = Noops::new(1 << 20);
        let scope = Scope {
            project_id: 1,
            region_id: 1,
        };
        let g = group();
        let body = Bytes::from_static(br#"{"rules":[]}"#);
        noops.remember(Api::CfV2, scope, &g, &body, &["w".to_string()]);
        assert!(noops.may_know(Api::CfV2, scope, g.id(), &body));
        assert_eq!(noops.known(Api::CfV2, scope, &g, &body), Some(vec!["w".to_string()]));
        // Another body, another front end, another scope.
        assert!(!noops.may_know(Api::CfV2, scope, g.id(), br#"{"rules": []}"#));
        assert_eq!(noops.known(Api::CfV3, scope, &g, &body), None);
        assert_eq!(
            noops.known(
                Api::CfV2,
                Scope {
                    project_id: 1,
                    region_id: 2
                },
                &g,
                &body
            ),
            None
        );
        // Equal content that is not the same shared content: not recognised.
        let mut copy = g.clone();
        if let Content::Compact(c) = &g.content {
            copy.content = Content::Compact(Arc::new((**c).clone()));
        }
        assert_eq!(noops.known(Api::CfV2, scope, &copy, &body), None);
        // The same content under changed metadata (a rename): not recognised.
        let mut renamed = g.clone();
        renamed.meta.name = "db".into();
        assert_eq!(noops.known(Api::CfV2, scope, &renamed, &body), None);
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let noops = Noops::new(16 << 20);
        let scope = Scope {
            project_id: 1,
            region_id: 1,
        };
        let g = group();
        let body = Bytes::from(vec![b' '; MAX_BODY + 1]);
        noops.remember(Api::CfV2, scope, &g, &body, &[]);
        assert!(!noops.may_know(Api::CfV2, scope, g.id(), &body));
    }
}
