//! sgbridge: a gateway between the Cloud Foundry and Gcore Cloud
//! security-group APIs.
//!
//! Layout (dependencies point one way, top to bottom):
//! - [`server`]: the hyper + tower gateway: layers, routing, front ends that
//!   parse a dialect, call the service layer and render.
//! - [`service`]: each write protocol held once (lock, read, plan, commit,
//!   wait, re-read), over [`coord`] (locks, uncertain creates) and [`tasks`].
//! - [`mapping`]: how each dialect's groups are stored on each backend shape.
//! - [`backend`]: one contract over model types; `embedded` and `gcore`.
//! - [`dialect`]: the CF and Gcore wire formats, parsed into and rendered from
//!   the model.
//! - [`model`]: rules, groups, tasks, valid by construction; depends on nothing here.
//! - [`error`]: the one gateway error, with blame and retryability.
#![forbid(unsafe_code)]

pub mod backend;
pub mod build;
pub mod cli;
pub mod config;
pub mod coord;
pub mod dialect;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod json;
pub mod mapping;
pub mod model;
pub mod outbound;
pub mod sanitize;
pub mod server;
pub mod service;
pub mod store;
pub mod tasks;
pub mod timefmt;
pub mod urlenc;
