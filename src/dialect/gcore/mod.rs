//! The Gcore Cloud dialect: v2 request bodies and rules parsed as Gcore
//! validates them, and Gcore's response and error bodies.

pub mod body;
pub mod error;
pub mod pretty;
pub mod rule;
pub mod template;
pub mod time;
pub mod wire;

pub use body::{GcoreCreate, GcoreFlags, GcorePatch};
pub use error::{GcoreError, GcoreErrorBody};
pub use rule::RuleSpec;
