//! CF v3 list queries as CC's list messages validate them: filters, paging,
//! ordering, every message in CC's order in one 422; and the pagination
//! envelope's absolute links (query keys sorted, as ActiveSupport writes them).

use super::error::V3Error;
use super::wire::{Link, Pagination};
use crate::dialect::gcore::time::parse as parse_time;
use chrono::{DateTime, Utc};

/// The filters `GET /v3/security_groups` takes, in CC's order.
pub const GROUP_PARAMS: [&str; 11] = [
    "page",
    "per_page",
    "order_by",
    "created_ats",
    "updated_ats",
    "guids",
    "names",
    "running_space_guids",
    "staging_space_guids",
    "globally_enabled_running",
    "globally_enabled_staging",
];

/// The filters of `GET /v3/spaces/:guid/{running,staging}_security_groups`.
pub const SPACE_PARAMS: [&str; 7] = [
    "page",
    "per_page",
    "order_by",
    "created_ats",
    "updated_ats",
    "guids",
    "names",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// A timestamp filter: one of the listed instants, or a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFilter {
    Any(Vec<DateTime<Utc>>),
    Compare(Relation, DateTime<Utc>),
}

impl TimeFilter {
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        match self {
            TimeFilter::Any(list) => list.contains(&t),
            TimeFilter::Compare(Relation::Lt, x) => t < *x,
            TimeFilter::Compare(Relation::Lte, x) => t <= *x,
            TimeFilter::Compare(Relation::Gt, x) => t > *x,
            TimeFilter::Compare(Relation::Gte, x) => t >= *x,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub page: usize,
    pub per_page: usize,
    /// `None`: creation order, ascending.
    pub order: Option<(OrderField, bool)>,
    pub guids: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
    pub running_space_guids: Option<Vec<String>>,
    pub staging_space_guids: Option<Vec<String>>,
    pub globally_enabled_running: Option<bool>,
    pub globally_enabled_staging: Option<bool>,
    pub created_ats: Option<TimeFilter>,
    pub updated_ats: Option<TimeFilter>,
    /// Every non-paging parameter given, for the pagination links.
    echo: Vec<(String, String)>,
}

/// Ruby's `String#to_i`: leading digits (with a sign), else 0.
fn ruby_to_i(text: &str) -> i64 {
    let t = text.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse::<i64>().map_or(0, |n| sign * n)
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim_start().to_string()).collect()
}

/// A label as ActiveModel humanizes an attribute (`per_page` → `Per page`).
fn humanize(key: &str) -> String {
    let mut s = key.replace('_', " ");
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    s
}

fn time_filter(key: &str, params: &[(String, String)], errors: &mut Vec<String>) -> Option<TimeFilter> {
    let label = humanize(key);
    let bad_time =
        || format!("{label} has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'");
    let strict = |t: &str| {
        let ok = t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T';
        ok.then(|| parse_time(t)).flatten()
    };
    let mut out = None;
    for (k, v) in params {
        if k == key {
            let mut times = Vec::new();
            for t in list(v) {
                match strict(&t) {
                    Some(x) => times.push(x),
                    None => {
                        errors.push(bad_time());
                        return None;
                    }
                }
            }
            out = Some(TimeFilter::Any(times));
        } else if let Some(op) = k
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
        {
            let relation = match op {
                "lt" => Relation::Lt,
                "lte" => Relation::Lte,
                "gt" => Relation::Gt,
                "gte" => Relation::Gte,
                other => {
                    errors.push(format!("{label} Invalid relational operator: '{other}'"));
                    return None;
                }
            };
            let values = list(v);
            if values.len() != 1 {
                errors.push(format!(
                    "{label} only accepts one value when using a relational operator"
                ));
                return None;
            }
            match strict(&values[0]) {
                Some(x) => out = Some(TimeFilter::Compare(relation, x)),
                None => {
                    errors.push(bad_time());
                    return None;
                }
            }
        }
    }
    out
}

/// The base key of a parameter (`created_ats[lt]` → `created_ats`).
fn base_key(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

pub fn parse(params: &[(String, String)], allowed: &[&str]) -> Result<ListQuery, V3Error> {
    // Rack: a repeated key keeps its last value.
    let last = |key: &str| params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let mut errors = Vec::new();
    let page = match last("page") {
        None => 1,
        Some(v) => match ruby_to_i(v) {
            n if n > 0 => n as usize,
            _ => {
                errors.push("Page must be a positive integer".to_string());
                1
            }
        },
    };
    let per_page = match last("per_page") {
        None => 50,
        Some(v) => match ruby_to_i(v) {
            n if n <= 0 => {
                errors.push("Per page must be a positive integer".to_string());
                50
            }
            n if n > 5000 => {
                errors.push("Per page must be between 1 and 5000".to_string());
                50
            }
            n => n as usize,
        },
    };
    let order = match last("order_by").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let (desc, field) = match v.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, v.strip_prefix('+').unwrap_or(v)),
            };
            match field {
                "created_at" => Some((OrderField::CreatedAt, desc)),
                "updated_at" => Some((OrderField::UpdatedAt, desc)),
                _ => {
                    errors.push("Order by can only be: 'created_at', 'updated_at'".to_string());
                    None
                }
            }
        }
    };
    let created_ats = time_filter("created_ats", params, &mut errors);
    let updated_ats = time_filter("updated_ats", params, &mut errors);
    let guids = last("guids").map(list);
    let mut unknown: Vec<String> = Vec::new();
    for (k, _) in params {
        let key = base_key(k);
        if !allowed.contains(&key) && !unknown.iter().any(|u| u == key) {
            unknown.push(key.to_string());
        }
    }
    if !unknown.is_empty() {
        let given: Vec<String> = unknown.iter().map(|k| format!("'{k}'")).collect();
        let valid: Vec<String> = allowed.iter().map(|k| format!("'{k}'")).collect();
        errors.push(format!(
            "Unknown query parameter(s): {}. Valid parameters are: {}",
            given.join(", "),
            valid.join(", ")
        ));
    }
    let names = last("names").map(list);
    let running_space_guids = last("running_space_guids").map(list);
    let staging_space_guids = last("staging_space_guids").map(list);
    let mut boolean = |key: &str| match last(key) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(format!("{} must be 'true' or 'false'", humanize(key)));
            None
        }
    };
    let globally_enabled_running = boolean("globally_enabled_running");
    let globally_enabled_staging = boolean("globally_enabled_staging");
    if !errors.is_empty() {
        return Err(V3Error::Unprocessable(errors));
    }
    let mut echo: Vec<(String, String)> = Vec::new();
    for (k, v) in params {
        if matches!(k.as_str(), "page" | "per_page" | "order_by") {
            continue;
        }
        match echo.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => echo.push((k.clone(), v.clone())),
        }
    }
    Ok(ListQuery {
        page,
        per_page,
        order,
        guids,
        names,
        running_space_guids,
        staging_space_guids,
        globally_enabled_running,
        globally_enabled_staging,
        created_ats,
        updated_ats,
        echo,
    })
}

/// Ruby's `CGI.escape`: unreserved characters pass, a space is `+`.
fn cgi_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl ListQuery {
    /// The pagination envelope for `total` items, links absolute to `base`.
    pub fn pagination(&self, base: &str, total: usize) -> Pagination {
        let pages = total.div_ceil(self.per_page).max(1);
        let link = |page: usize| {
            let mut pairs: Vec<String> = self
                .echo
                .iter()
                .map(|(k, v)| format!("{}={}", cgi_escape(k), cgi_escape(v)))
                .collect();
            pairs.push(format!("page={page}"));
            pairs.push(format!("per_page={}", self.per_page));
            if let Some((field, desc)) = self.order {
                let name = match field {
                    OrderField::CreatedAt => "created_at",
                    OrderField::UpdatedAt => "updated_at",
                };
                pairs.push(format!(
                    "order_by={}",
                    cgi_escape(&format!("{}{name}", if desc { "-" } else { "+" }))
                ));
            }
            pairs.sort();
            Link {
                href: format!("{base}?{}", pairs.join("&")),
            }
        };
        Pagination {
            total_results: total,
            total_pages: pages,
            first: link(1),
            last: link(pages),
            next: (self.page < pages).then(|| link(self.page + 1)),
            previous: (self.page > 1).then(|| link(self.page - 1)),
        }
    }

    /// The range of items on the asked page.
    pub fn window(&self, total: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.per_page).min(total);
        start..start.saturating_add(self.per_page).min(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Result<ListQuery, V3Error> {
        parse(&crate::urlenc::parse_pairs(text), &GROUP_PARAMS)
    }

    #[test]
    fn cc_messages_in_cc_order() {
        let e = q("page=0&per_page=6000&order_by=name&foo=1&globally_enabled_running=yes").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Page must be a positive integer, Per page must be between 1 and 5000, Order by can only be: 'created_at', 'updated_at', Unknown query parameter(s): 'foo'. Valid parameters are: 'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names', 'running_space_guids', 'staging_space_guids', 'globally_enabled_running', 'globally_enabled_staging', Globally enabled running must be 'true' or 'false'"
        );
        assert_eq!(q("page=2abc").unwrap().page, 2, "Ruby's to_i");
        let e = q("created_ats[foo]=2020-01-01T00:00:00Z").unwrap_err();
        assert_eq!(e.to_string(), "Created ats Invalid relational operator: 'foo'");
    }

    #[test]
    fn links_are_absolute_and_sorted() {
        let lq = q("names=a,b&per_page=2&order_by=created_at&page=2").unwrap();
        let p = lq.pagination("https://api.example.org/v3/security_groups", 5);
        assert_eq!(p.total_pages, 3);
        assert_eq!(
            p.next.unwrap().href,
            "https://api.example.org/v3/security_groups?names=a%2Cb&order_by=%2Bcreated_at&page=3&per_page=2"
        );
        assert!(p.previous.unwrap().href.contains("page=1"));
        assert_eq!(lq.window(5), 2..4);
        assert_eq!(q("").unwrap().pagination("x", 0).total_pages, 1);
    }
}
