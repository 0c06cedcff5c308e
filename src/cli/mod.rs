//! The `sgbridge` command line.

pub mod healthcheck;
pub mod signals;
pub mod translate;
