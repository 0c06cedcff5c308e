//! The `sgbridge` command line.

pub mod translate;
