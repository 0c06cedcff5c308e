//! Tasks as the gateway handles them: a registry for the tasks this process
//! runs ([`registry`]; backends announce their tasks' ends there) and how a
//! wait on tasks can fail ([`wait`]). Waiting itself polls backends, so it
//! lives above them, in `service::tracker`.

pub mod registry;
pub mod wait;

pub use registry::{acknowledge, page, TaskRegistry};
pub use wait::WaitError;
