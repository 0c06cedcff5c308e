//! The Cloud Foundry v3 dialect: security-group bodies and queries validated
//! as CC's v3 messages do, the v3 wire objects (organizations and spaces
//! too), and v3 error bodies.

pub mod audit;
pub mod body;
pub mod directory;
pub mod error;
pub mod query;
pub mod rule;
pub mod wire;

pub use error::V3Error;
