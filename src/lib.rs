//! sgbridge: a gateway between the Cloud Foundry and Gcore Cloud
//! security-group APIs.
//!
//! Layout (dependencies point one way; the full table, checked by
//! `tests/it/layering.rs`, is in the README's "How it is built"):
//! - [`server`]: the hyper + tower gateway: layers, routing, authentication
//!   and the token issuer, front ends that parse a dialect, call the service
//!   layer and render.
//! - [`service`]: each write protocol held once (lock, read, plan, commit,
//!   wait on tasks, re-read), over [`coord`] (locks, uncertain creates).
//! - [`error`]: the one gateway error, with blame and retryability.
//! - [`backend`]: one contract over model types: `embedded`, `gcore`, `cf`.
//! - [`tasks`]: the registry of tasks this process runs.
//! - [`store`]: what the gateway keeps: memory, SQLite, PostgreSQL.
//! - [`mapping`]: how each dialect's groups are stored on each backend shape.
//! - [`config`], [`crypto`]: the configuration; the issuer's hashes and keys.
//! - [`dialect`]: the CF and Gcore wire formats, parsed into and rendered from
//!   the model.
//! - [`model`]: rules, groups, tasks, valid by construction; depends on nothing here.
#![forbid(unsafe_code)]

pub mod backend;
pub mod build;
pub mod cli;
pub mod config;
pub mod coord;
pub mod crypto;
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
