//! Wire formats. Each dialect parses and validates its wire input into the
//! model exactly as the real server does, and renders model values and errors
//! back into its own bodies. Dialects never depend on each other.

pub mod cf;
pub mod gcore;
