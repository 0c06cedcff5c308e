//! Tasks as the gateway handles them: a registry for the tasks this process
//! runs ([`registry`]) and waiting on any backend's tasks ([`tracker`]).

pub mod registry;
pub mod tracker;

pub use registry::{acknowledge, page, TaskRegistry};
pub use tracker::{PollConfig, Tracker, WaitError};
