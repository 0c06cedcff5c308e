//! CF v3 list queries as CC's list messages validate them: filters, paging,
//! ordering, includes, every message in CC's order in one 422; and the
//! pagination envelope's absolute links (query keys sorted, as ActiveSupport
//! writes them). One parser serves every v3 list; a [`ListSpec`] says what
//! each endpoint accepts.

use super::error::V3Error;
use super::wire::{Link, Pagination};
use crate::dialect::gcore::time::parse as parse_time;
use chrono::{DateTime, Utc};

/// What one list endpoint accepts (the CC list message behind it).
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    /// Its query parameters, in CC's order (the unknown-parameter message lists them so).
    pub params: &'static [&'static str],
    /// The fields `order_by` may name, in CC's order.
    pub order_by: &'static [OrderField],
    /// The values `include` may take (empty: no `include`).
    pub include: &'static [&'static str],
    /// Refused as 400 `CF-BadQueryParameter` (CC's events controller),
    /// not 422 (its list messages elsewhere).
    pub bad_query: bool,
}

impl ListSpec {
    fn allows(&self, key: &str) -> bool {
        self.params.contains(&key)
    }
}

const BY_TIME: [OrderField; 2] = [OrderField::CreatedAt, OrderField::UpdatedAt];
const BY_TIME_OR_NAME: [OrderField; 3] = [OrderField::CreatedAt, OrderField::UpdatedAt, OrderField::Name];

/// `GET /v3/security_groups` (CC `SecurityGroupListMessage`).
pub const GROUPS: ListSpec = ListSpec {
    params: &[
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
    ],
    order_by: &BY_TIME,
    include: &[],
    bad_query: false,
};

/// `GET /v3/spaces/:guid/{running,staging}_security_groups`.
pub const SPACE_GROUPS: ListSpec = ListSpec {
    params: &[
        "page",
        "per_page",
        "order_by",
        "created_ats",
        "updated_ats",
        "guids",
        "names",
    ],
    order_by: &BY_TIME,
    include: &[],
    bad_query: false,
};

/// `GET /v3/organizations` (CC `OrgsListMessage`, without `label_selector`
/// and `isolation_segment_guid`: the directory has neither).
pub const ORGS: ListSpec = ListSpec {
    params: &[
        "page",
        "per_page",
        "order_by",
        "created_ats",
        "updated_ats",
        "guids",
        "names",
    ],
    order_by: &BY_TIME_OR_NAME,
    include: &[],
    bad_query: false,
};

/// `GET /v3/spaces` (CC `SpacesListMessage`, without `label_selector`).
pub const SPACES: ListSpec = ListSpec {
    params: &[
        "page",
        "per_page",
        "order_by",
        "created_ats",
        "updated_ats",
        "guids",
        "names",
        "organization_guids",
        "include",
    ],
    order_by: &BY_TIME_OR_NAME,
    include: &SPACE_INCLUDES,
    bad_query: false,
};

/// `GET /v3/audit_events` (CC `EventsListMessage`): its errors are 400
/// `CF-BadQueryParameter`, not the 422 of the other lists.
pub const AUDIT_EVENTS: ListSpec = ListSpec {
    params: &[
        "page",
        "per_page",
        "order_by",
        "created_ats",
        "updated_ats",
        "guids",
        "types",
        "target_guids",
        "space_guids",
        "organization_guids",
    ],
    order_by: &BY_TIME,
    include: &[],
    bad_query: true,
};

/// What `include` may name on spaces (list and show).
pub const SPACE_INCLUDES: [&str; 2] = ["org", "organization"];

/// Parameters CC turns into arrays (`to_array!`); the links write them back joined.
const LIST_KEYS: [&str; 12] = [
    "guids",
    "types",
    "target_guids",
    "target_guids[not]",
    "space_guids",
    "names",
    "running_space_guids",
    "staging_space_guids",
    "organization_guids",
    "include",
    "created_ats",
    "updated_ats",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    CreatedAt,
    UpdatedAt,
    Name,
}

impl OrderField {
    /// The field as `order_by` names it.
    pub fn key(self) -> &'static str {
        match self {
            OrderField::CreatedAt => "created_at",
            OrderField::UpdatedAt => "updated_at",
            OrderField::Name => "name",
        }
    }
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
    pub organization_guids: Option<Vec<String>>,
    /// `include=organization` (or `org`): the spaces' organizations too.
    pub include_organization: bool,
    pub created_ats: Option<TimeFilter>,
    pub updated_ats: Option<TimeFilter>,
    pub types: Option<Vec<String>>,
    pub target_guids: Option<Vec<String>>,
    /// `target_guids[not]`: every target but these.
    pub target_guids_not: Option<Vec<String>>,
    pub space_guids: Option<Vec<String>>,
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

/// Ruby's `\s`.
fn ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c')
}

/// CC's `to_array!`: split on `/,\s*/`, then each part percent-decoded once
/// more (Addressable's `unescape`: `%XX` only, a `+` stays). So a comma
/// inside a name arrives as `%252C` and is one value.
fn list(value: &str) -> Vec<String> {
    let mut parts = value.split(',');
    let first = parts.next().into_iter();
    first
        .chain(parts.map(|p| p.trim_start_matches(ruby_space)))
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
        .collect()
}

/// An array parameter written back as CC's `to_param_hash` does: commas
/// inside a value as `%2C`, values joined by `,`.
fn rejoin(values: &[String]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.replace(',', "%2C")).collect();
    parts.join(",")
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

/// `key[not]=a,b` (CC's exclusion filter); any other operator is an error.
fn not_filter(key: &str, params: &[(String, String)], errors: &mut Vec<String>) -> Option<Vec<String>> {
    let mut out = None;
    for (k, v) in params {
        let Some(op) = k
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
        else {
            continue;
        };
        if op == "not" {
            out = Some(list(v));
        } else {
            errors.push(format!("{} has an invalid operator", humanize(key)));
            return None;
        }
    }
    out
}

/// The base key of a parameter (`created_ats[lt]` → `created_ats`).
fn base_key(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

/// Rack: a repeated key keeps its last value.
fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn page(value: Option<&str>, errors: &mut Vec<String>) -> usize {
    match value.map(ruby_to_i) {
        None => 1,
        Some(n) if n > 0 => n as usize,
        Some(_) => {
            errors.push("Page must be a positive integer".to_string());
            1
        }
    }
}

fn per_page(value: Option<&str>, errors: &mut Vec<String>) -> usize {
    match value.map(ruby_to_i) {
        None => 50,
        Some(n) if n <= 0 => {
            errors.push("Per page must be a positive integer".to_string());
            50
        }
        Some(n) if n > 5000 => {
            errors.push("Per page must be between 1 and 5000".to_string());
            50
        }
        Some(n) => n as usize,
    }
}

/// `order_by`: a field the spec allows, `+` (ascending) or `-` first.
fn order(value: Option<&str>, allowed: &[OrderField], errors: &mut Vec<String>) -> Option<(OrderField, bool)> {
    let v = value.filter(|v| !v.is_empty())?;
    let (desc, name) = match v.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let field = allowed.iter().copied().find(|f| f.key() == name);
    if field.is_none() {
        let valid: Vec<String> = allowed.iter().map(|f| format!("'{}'", f.key())).collect();
        errors.push(format!("Order by can only be: {}", valid.join(", ")));
    }
    field.map(|f| (f, desc))
}

/// CC's `NoAdditionalParamsValidator` message, if any key is not allowed.
fn unknown_params(params: &[(String, String)], allowed: &[&str]) -> Option<String> {
    let mut unknown: Vec<&str> = Vec::new();
    for (k, _) in params {
        let key = base_key(k);
        if !allowed.contains(&key) && !unknown.contains(&key) {
            unknown.push(key);
        }
    }
    if unknown.is_empty() {
        return None;
    }
    let quote = |keys: &[&str]| keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "Unknown query parameter(s): {}. Valid parameters are: {}",
        quote(&unknown),
        quote(allowed)
    ))
}

/// CC's `IncludeParamValidator`: whether a valid resource is asked for.
fn include(value: Option<&str>, valid: &[&str], errors: &mut Vec<String>) -> bool {
    let Some(v) = value else { return false };
    let mut seen: Vec<String> = Vec::new();
    for candidate in list(v) {
        if !valid.contains(&candidate.as_str()) {
            let valid: Vec<String> = valid.iter().map(|k| format!("'{k}'")).collect();
            errors.push(format!(
                "Invalid included resource: '{candidate}'. Valid included resources are: {}",
                valid.join(", ")
            ));
        } else if seen.contains(&candidate) {
            errors.push(format!("Duplicate included resource: '{candidate}'"));
        } else {
            seen.push(candidate);
        }
    }
    !seen.is_empty()
}

/// `true` or `false`, exactly.
fn boolean(key: &str, value: Option<&str>, errors: &mut Vec<String>) -> Option<bool> {
    match value? {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.push(format!("{} must be 'true' or 'false'", humanize(key)));
            None
        }
    }
}

/// Every non-paging parameter given (its last value; arrays as CC writes
/// them back), for the pagination links.
fn echo(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in params {
        if matches!(k.as_str(), "page" | "per_page" | "order_by") {
            continue;
        }
        let value = if LIST_KEYS.contains(&k.as_str()) {
            rejoin(&list(v))
        } else {
            v.clone()
        };
        match out.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = value,
            None => out.push((k.clone(), value)),
        }
    }
    out
}

/// A list query, validated as `spec`'s CC message does; every message in
/// CC's order in one 422.
pub fn parse(params: &[(String, String)], spec: &ListSpec) -> Result<ListQuery, V3Error> {
    let value = |key: &str| last(params, key);
    // A filter the spec does not take is only an unknown parameter.
    let allowed = |key: &str| spec.allows(key).then(|| value(key)).flatten();
    let listed = |key: &str| allowed(key).map(list);
    let mut errors = Vec::new();
    let page = page(value("page"), &mut errors);
    let per_page = per_page(value("per_page"), &mut errors);
    let order = order(value("order_by"), spec.order_by, &mut errors);
    let created_ats = time_filter("created_ats", params, &mut errors);
    let updated_ats = time_filter("updated_ats", params, &mut errors);
    errors.extend(unknown_params(params, spec.params));
    let include_organization = include(allowed("include"), spec.include, &mut errors);
    let target_guids_not = not_filter("target_guids", params, &mut errors);
    let globally_enabled_running = boolean(
        "globally_enabled_running",
        allowed("globally_enabled_running"),
        &mut errors,
    );
    let globally_enabled_staging = boolean(
        "globally_enabled_staging",
        allowed("globally_enabled_staging"),
        &mut errors,
    );
    if !errors.is_empty() && spec.bad_query {
        return Err(V3Error::BadQuery(errors));
    }
    if !errors.is_empty() {
        return Err(V3Error::Unprocessable(errors));
    }
    Ok(ListQuery {
        page,
        per_page,
        order,
        guids: value("guids").map(list),
        names: listed("names"),
        running_space_guids: listed("running_space_guids"),
        staging_space_guids: listed("staging_space_guids"),
        globally_enabled_running,
        globally_enabled_staging,
        organization_guids: listed("organization_guids"),
        include_organization,
        created_ats,
        updated_ats,
        types: listed("types"),
        target_guids: listed("target_guids"),
        target_guids_not: target_guids_not.filter(|_| spec.allows("target_guids")),
        space_guids: listed("space_guids"),
        echo: echo(params),
    })
}

/// A show query that takes only `include` (CC `SpaceShowMessage`): whether
/// a valid resource is asked for.
pub fn parse_include(params: &[(String, String)], valid: &[&str]) -> Result<bool, V3Error> {
    let mut errors: Vec<String> = unknown_params(params, &["include"]).into_iter().collect();
    let asked = include(last(params, "include"), valid, &mut errors);
    if errors.is_empty() {
        Ok(asked)
    } else {
        Err(V3Error::Unprocessable(errors))
    }
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
                let sign = if desc { "-" } else { "+" };
                pairs.push(format!("order_by={}", cgi_escape(&format!("{sign}{}", field.key()))));
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
        parse(&crate::urlenc::parse_pairs(text), &GROUPS)
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

    #[test]
    fn array_values_are_split_then_unescaped_as_cc_does() {
        // The cf CLI's `names=db+access%252Cv2`: one name holding a space and a comma.
        let lq = q("names=db+access%252Cv2,%20x,%09y,%2520z&page=1&per_page=1").unwrap();
        let want = ["db access,v2", "x", "y", " z"].map(String::from);
        assert_eq!(
            lq.names.as_deref(),
            Some(&want[..]),
            "trimmed after a comma, then unescaped"
        );
        assert_eq!(
            q("names=+a").unwrap().names,
            Some(vec![" a".to_string()]),
            "no trim before the first"
        );
        assert_eq!(q("names=c%252B%252B").unwrap().names, Some(vec!["c++".to_string()]));
        assert_eq!(q("names=").unwrap().names, Some(vec![String::new()]));
        let first = lq.pagination("https://x/v3/security_groups", 1).first.href;
        assert_eq!(
            first,
            "https://x/v3/security_groups?names=db+access%252Cv2%2Cx%2Cy%2C+z&page=1&per_page=1"
        );
    }

    #[test]
    fn the_spec_decides_fields_order_and_includes() {
        let spaces = |text: &str| parse(&crate::urlenc::parse_pairs(text), &SPACES);
        let lq = spaces("order_by=-name&include=org&organization_guids=a,b").unwrap();
        assert_eq!(lq.order, Some((OrderField::Name, true)));
        assert!(lq.include_organization);
        assert_eq!(lq.organization_guids, Some(vec!["a".to_string(), "b".into()]));
        let next = lq.pagination("https://x/v3/spaces", 100).next.unwrap().href;
        assert_eq!(
            next,
            "https://x/v3/spaces?include=org&order_by=-name&organization_guids=a%2Cb&page=2&per_page=50"
        );
        assert_eq!(
            spaces("include=space,org,org").unwrap_err().to_string(),
            "Invalid included resource: 'space'. Valid included resources are: 'org', 'organization', Duplicate included resource: 'org'"
        );
        assert!(!spaces("").unwrap().include_organization);
        let e = q("order_by=name&include=org").unwrap_err().to_string();
        assert!(
            e.starts_with("Order by can only be: 'created_at', 'updated_at', Unknown query parameter(s): 'include'.")
        );
        assert!(!e.contains("Invalid included"), "{e}");
        let orgs = parse(&crate::urlenc::parse_pairs("order_by=%2Bname"), &ORGS).unwrap();
        assert_eq!(orgs.order, Some((OrderField::Name, false)));
        assert_eq!(
            parse_include(&crate::urlenc::parse_pairs("include=organization"), &SPACE_INCLUDES),
            Ok(true)
        );
        assert_eq!(
            parse_include(&crate::urlenc::parse_pairs("page=1"), &SPACE_INCLUDES)
                .unwrap_err()
                .to_string(),
            "Unknown query parameter(s): 'page'. Valid parameters are: 'include'"
        );
    }
}
