//! The Gcore Cloud dialect: v2 request bodies and rules parsed as Gcore
//! validates them, model rules expanded into Gcore rules, and Gcore's response
//! and error bodies.

pub mod body;
pub mod error;
pub mod render;
pub mod rule;
pub mod time;
pub mod wire;

pub use body::GcoreFlags;
pub use error::{GcoreError, GcoreErrorBody};
pub use render::{expand, expand_within, ExpandError, Expanded, SmtpPolicy};
pub use rule::RuleSpec;
