//! Where groups live: a project and a region (Gcore's terms; a Cloud
//! Foundry foundation is one scope).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub project_id: u64,
    pub region_id: u64,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project_id, self.region_id)
    }
}
