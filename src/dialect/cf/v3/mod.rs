//! The Cloud Foundry v3 dialect: security-group bodies and queries validated
//! as CC's v3 messages do, rendering, and v3 error bodies.

pub mod error;

pub use error::V3Error;
