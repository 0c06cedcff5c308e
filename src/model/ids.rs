//! Identifiers: group, rule, task and space ids are UUID-shaped strings.

use std::fmt;

/// A lower-case UUID string (`8-4-4-4-12` hex digits). CF guids and Gcore ids
/// share this shape; anything else is refused where an id is parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let shaped = bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        shaped.then(|| Uuid(text.to_ascii_lowercase()))
    }

    /// A random (version 4) UUID from a caller-supplied 128-bit value.
    pub fn from_random(bits: u128) -> Self {
        let b = (bits & !(0xf000 << 64) | (0x4000 << 64)) & !(0xc000 << 48) | (0x8000 << 48);
        let h = format!("{b:032x}");
        Uuid(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }

    /// A stable UUID named by `text`: the first 128 bits of its SHA-256,
    /// shaped as version 4 — the same text gives the same id in every
    /// process and release (user ids, audit actors).
    pub fn derived(text: &str) -> Self {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_random(u128::from_be_bytes(bytes))
    }

    /// A fresh random (version 4) UUID.
    pub fn new_random() -> Self {
        Uuid::from_random(uuid::Uuid::new_v4().as_u128())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a security group (CF guid, Gcore `id`).
pub type GroupId = Uuid;

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids issued before `derived` existed stay the same.
    #[test]
    fn a_derived_id_is_the_builder_shaped_digest() {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(b"sgbridge-user:admin");
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let before = uuid::Builder::from_random_bytes(bytes).into_uuid().to_string();
        assert_eq!(Uuid::derived("sgbridge-user:admin").as_str(), before);
    }

    #[test]
    fn parses_only_uuid_shapes() {
        assert!(Uuid::parse("72797142-1dd1-45d8-b55c-cb51fe6f94fa").is_some());
        assert_eq!(
            Uuid::parse("72797142-1DD1-45d8-b55c-cb51fe6f94fa").unwrap().as_str(),
            "72797142-1dd1-45d8-b55c-cb51fe6f94fa"
        );
        assert!(Uuid::parse("72797142-1dd1-45d8-b55c-cb51fe6f94f").is_none());
        assert!(Uuid::parse("72797142x1dd1-45d8-b55c-cb51fe6f94fa").is_none());
        assert!(Uuid::parse("g2797142-1dd1-45d8-b55c-cb51fe6f94fa").is_none());
    }

    #[test]
    fn random_ids_are_version_4() {
        let id = Uuid::from_random(u128::MAX);
        assert_eq!(id.as_str().as_bytes()[14], b'4');
        assert!(matches!(id.as_str().as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert!(Uuid::parse(id.as_str()).is_some());
        assert!(Uuid::parse(Uuid::from_random(0).as_str()).is_some());
    }
}
