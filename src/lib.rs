//! sgbridge: a gateway between the Cloud Foundry v2 and Gcore Cloud
//! security-group APIs.
//!
//! Layout (dependencies point one way):
//! - [`model`]: rules and groups, valid by construction; depends on nothing here.
//! - [`dialect`]: the CF v2 and Gcore wire formats, parsed into and rendered from
//!   the model; each dialect depends on the model only.
//! - [`cli`]: the `sgbridge` command, which wires dialects together.

pub mod cli;
pub mod dialect;
pub mod json;
pub mod model;
