//! Transport ports and port ranges, valid by construction.

use smallvec::{smallvec, SmallVec};
use std::fmt;

/// A transport-layer port number (0–65535). CF admits 1–65535, Gcore 0–65535;
/// each dialect enforces its own lower bound when it parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u16);

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An inclusive port range with `lo <= hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    lo: Port,
    hi: Port,
}

impl PortRange {
    /// A range from `lo` to `hi` inclusive; `None` when `lo > hi`.
    pub fn new(lo: u16, hi: u16) -> Option<Self> {
        (lo <= hi).then_some(Self {
            lo: Port(lo),
            hi: Port(hi),
        })
    }

    pub fn single(port: u16) -> Self {
        Self {
            lo: Port(port),
            hi: Port(port),
        }
    }

    pub fn lo(self) -> u16 {
        self.lo.0
    }

    pub fn hi(self) -> u16 {
        self.hi.0
    }

    pub fn is_single(self) -> bool {
        self.lo == self.hi
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo.0 <= port && port <= self.hi.0
    }

    /// This range with `port` taken out: zero, one or two ranges.
    pub fn without(self, port: u16) -> Vec<PortRange> {
        if !self.contains(port) {
            return vec![self];
        }
        let mut out = Vec::with_capacity(2);
        if port > self.lo.0 {
            out.extend(PortRange::new(self.lo.0, port - 1));
        }
        if port < self.hi.0 {
            out.extend(PortRange::new(port + 1, self.hi.0));
        }
        out
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// The ports a rule matches: every port, or a non-empty list of ranges in the
/// order the caller gave them (CF lists are echoed back in that order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortSet {
    Any,
    Ranges(NonEmptyRanges),
}

/// Port ranges, the first two kept inline (most rules name one or two).
pub type PortRanges = SmallVec<[PortRange; 2]>;

/// A non-empty list of port ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonEmptyRanges(PortRanges);

impl NonEmptyRanges {
    pub fn new(ranges: impl Into<PortRanges>) -> Option<Self> {
        let ranges = ranges.into();
        (!ranges.is_empty()).then_some(Self(ranges))
    }

    pub fn as_slice(&self) -> &[PortRange] {
        &self.0
    }
}

impl PortSet {
    pub fn ranges(ranges: impl Into<PortRanges>) -> Option<Self> {
        NonEmptyRanges::new(ranges).map(PortSet::Ranges)
    }

    pub fn single(range: PortRange) -> Self {
        PortSet::Ranges(NonEmptyRanges(smallvec![range]))
    }

    pub fn contains(&self, port: u16) -> bool {
        match self {
            PortSet::Any => true,
            PortSet::Ranges(r) => r.0.iter().any(|r| r.contains(port)),
        }
    }

    /// The ranges; `Any` is the full 0–65535 range.
    pub fn to_ranges(&self) -> Vec<PortRange> {
        match self {
            PortSet::Any => vec![PortRange::new(0, u16::MAX).expect("0 <= 65535")],
            PortSet::Ranges(r) => r.0.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_rejects_inverted_bounds() {
        assert!(PortRange::new(10, 9).is_none());
        assert!(PortRange::new(9, 9).unwrap().is_single());
    }

    #[test]
    fn without_splits_around_the_port() {
        let r = PortRange::new(1, 65535).unwrap();
        let parts = r.without(25);
        assert_eq!(
            parts,
            vec![PortRange::new(1, 24).unwrap(), PortRange::new(26, 65535).unwrap()]
        );
        assert_eq!(PortRange::single(25).without(25), vec![]);
        assert_eq!(
            PortRange::new(25, 30).unwrap().without(25),
            vec![PortRange::new(26, 30).unwrap()]
        );
        assert_eq!(
            PortRange::new(80, 90).unwrap().without(25),
            vec![PortRange::new(80, 90).unwrap()]
        );
    }

    #[test]
    fn display_uses_cf_forms() {
        assert_eq!(PortRange::single(80).to_string(), "80");
        assert_eq!(PortRange::new(80, 90).unwrap().to_string(), "80-90");
    }
}
