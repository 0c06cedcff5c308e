//! The Cloud Foundry v2 dialect: CC-exact parsing of security-group bodies and
//! rules into the model, and rendering of model values as CF resources.

pub mod body;
pub mod destination;
pub mod error;
pub mod name;
pub mod ports;
pub mod render;
pub mod rule;
pub mod v3;

pub use body::{GroupBody, Mode};
pub use destination::CfFlags;
pub use error::{CfError, CfErrorBody};
pub use render::CfRule;
