//! sgbridge: a gateway between the Cloud Foundry v2 and Gcore Cloud
//! security-group APIs.
//!
//! Layout (dependencies point one way):
//! - [`model`]: rules and groups, valid by construction; depends on nothing here.
//! - [`dialect`]: the CF v2 and Gcore wire formats, parsed into and rendered from
//!   the model; each dialect depends on the model only.
//! - [`backend`]: where groups are stored and changed (embedded, Gcore over
//!   HTTPS), speaking model values with Gcore's task semantics.
//! - [`server`]: the hyper + tower gateway that wires dialects to a backend.
//! - [`cli`]: the `sgbridge` command.

pub mod backend;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod json;
pub mod model;
pub mod server;
pub mod timefmt;
pub mod urlenc;
