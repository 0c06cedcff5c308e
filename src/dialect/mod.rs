//! Wire formats. Each dialect parses and validates its wire input into the
//! model exactly as the real server does, and renders model values and errors
//! back into its own bodies. Dialects never depend on each other.

pub mod cf;
pub mod gcore;

/// The most error messages one answer lists. CC lists every one (only its
/// nginx's 15 MB body limit bounds them), so a 4 MB body of empty rules
/// answered 155 MB; sgbridge lists the first ones and counts the rest in a
/// closing message, holding no more than this many at any time.
pub const MAX_LISTED_ERRORS: usize = 50;

/// A list of messages that keeps the first [`MAX_LISTED_ERRORS`] and counts
/// the rest.
#[derive(Debug, Default)]
pub struct Capped {
    omitted: usize,
}

impl Capped {
    /// Drops what `list` holds past the cap, counting it.
    pub fn trim(&mut self, list: &mut Vec<String>) {
        if list.len() > MAX_LISTED_ERRORS {
            self.omitted += list.len() - MAX_LISTED_ERRORS;
            list.truncate(MAX_LISTED_ERRORS);
        }
    }

    /// Closes `list` with the count of what was dropped, if anything was.
    pub fn close(mut self, list: &mut Vec<String>) {
        self.trim(list);
        if self.omitted > 0 {
            list.push(format!("and {} more errors not listed", self.omitted));
        }
    }
}
