//! The internal vocabulary: rules, security groups and their parts.
//!
//! Depends on nothing else in the crate. Every value here is valid by
//! construction; the dialects parse wire input into these types.

pub mod cf_state;
pub mod compact;
pub mod group;
pub mod ids;
pub mod ip;
pub mod narrow;
pub mod port;
pub mod proto;
pub mod rule;

pub use compact::{compact, CompactOptions};
pub use group::{CfAttrs, GroupPatch, GroupRule, NewGroup, SecurityGroup, Tag, TagPatch};
pub use ids::{GroupId, Uuid};
pub use ip::{Family, IpRange};
pub use port::{PortRange, PortSet};
pub use proto::{BareProto, IcmpVersion, NamedProto, PortedProto};
pub use rule::{Atom, AtomDest, AtomProto, Direction, IcmpMatch, IpList, Protocol, Rule, Target};
