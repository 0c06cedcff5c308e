//! The `sgbridge` command line.

pub mod hash_password;
pub mod healthcheck;
pub mod signals;
pub mod store;
pub mod translate;
