//! The internal vocabulary: rules, security groups, tasks and their parts.
//!
//! Depends on nothing else in the crate and knows no wire format. Every value
//! here is valid by construction; the dialects parse wire input into these
//! types and render them back.

pub mod compact;
pub mod group;
pub mod ids;
pub mod ip;
pub mod port;
pub mod proto;
pub mod rule;
pub mod scope;
pub mod task;

pub use compact::compact;
pub use group::{
    AtomicContent, CfAttrs, CompactContent, Content, Group, GroupMeta, GroupPatch, GroupRule, Lifecycle, NewContent,
    NewGroup, PatchContent, Shape, Tag, TagPatch,
};
pub use ids::{GroupId, Uuid};
pub use ip::{Cidrs, Family, IpRange, V4Text};
pub use port::{PortRange, PortRanges, PortSet};
pub use proto::{BareProto, IcmpVersion, NamedProto, PortedProto};
pub use rule::{Atom, AtomDest, AtomProto, Direction, IcmpMatch, IpList, IpRanges, Protocol, Rule, Target};
pub use scope::Scope;
pub use task::{Created, Task, TaskId, TaskKind, TaskQuery, TaskState};
