//! CC list parameters: `q` filters, `page`, `results-per-page`,
//! `order-direction`, `order-by`, and the paginated envelope with relative
//! `next_url`/`prev_url` (CC `common_params.rb`, `query.rb`,
//! `paginated_collection_renderer.rb`).

use crate::dialect::cf::render::Page;
use crate::dialect::cf::CfError;
use crate::server::http::{encode, Ctx};

const DEFAULT_PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    Ge,
    Le,
    Lt,
    Gt,
    In,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    op: Op,
    values: Vec<String>,
}

impl Filter {
    pub fn matches(&self, name: &str) -> bool {
        let v = &self.values[0];
        match self.op {
            Op::Eq => name == v,
            Op::Ge => name >= v.as_str(),
            Op::Le => name <= v.as_str(),
            Op::Lt => name < v.as_str(),
            Op::Gt => name > v.as_str(),
            Op::In => self.values.iter().any(|x| x == name),
        }
    }

    /// The exact name asked for, when the filter is an equality.
    pub fn exact(&self) -> Option<&str> {
        (self.op == Op::Eq).then(|| self.values[0].as_str())
    }
}

/// Split `q` values on `;` (`;;` is a literal `;`) into `key<op>value` filters;
/// only keys in `allowed` are accepted.
pub fn filters(ctx: &Ctx, allowed: &[&str]) -> Result<Vec<(String, Filter)>, CfError> {
    let mut out = Vec::new();
    for q in ctx.params("q") {
        for part in split_filters(q) {
            let (key, filter) = parse_filter(&part).ok_or_else(|| CfError::BadQueryParameter(part.clone()))?;
            if !allowed.contains(&key.as_str()) {
                return Err(CfError::BadQueryParameter(key));
            }
            out.push((key, filter));
        }
    }
    Ok(out)
}

fn split_filters(q: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ';' {
            if chars.peek() == Some(&';') {
                chars.next();
                out.last_mut().expect("never empty").push(';');
            } else {
                out.push(String::new());
            }
        } else {
            out.last_mut().expect("never empty").push(c);
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn parse_filter(text: &str) -> Option<(String, Filter)> {
    const OPS: [(&str, Op); 6] = [
        (" IN ", Op::In),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (":", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (pos, token, op) = OPS
        .iter()
        .filter_map(|(t, op)| text.find(t).map(|p| (p, *t, op.clone())))
        .min_by_key(|(p, t, _)| (*p, usize::MAX - t.len()))?;
    let key = text[..pos].to_string();
    let value = &text[pos + token.len()..];
    let values = if op == Op::In {
        value.split(',').map(str::to_string).collect()
    } else {
        vec![value.to_string()]
    };
    Some((key, Filter { op, values }))
}

/// Paging parameters, validated as CC does.
#[derive(Debug)]
pub struct Paging {
    page: usize,
    per_page: usize,
    desc: bool,
    order_by: Option<String>,
}

impl Paging {
    /// The sort key asked for (one of the route's sortable keys).
    pub fn order_by(&self) -> Option<&str> {
        self.order_by.as_deref()
    }
}

/// Paging for a route whose resources sort by `sortable` keys (security
/// groups declare none in CC, so any `order-by` is CC's 500 error there).
pub fn paging(ctx: &Ctx, sortable: &[&str]) -> Result<Paging, CfError> {
    let order_by = match ctx.param("order-by") {
        None => None,
        Some(by) if sortable.contains(&by) => Some(by.to_string()),
        Some(by) => return Err(CfError::OrderByParameterInvalid(by.to_string())),
    };
    let number = |key: &str, default: usize| -> Result<usize, CfError> {
        match ctx.param(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                CfError::BadQueryParameter(format!("{} must be a positive integer", key.replace('-', "_")))
            }),
        }
    };
    let page = number("page", 1)?;
    let per_page = number("results-per-page", DEFAULT_PER_PAGE)?;
    if per_page > MAX_PER_PAGE {
        return Err(CfError::BadQueryParameter(format!(
            "results_per_page must be <= {MAX_PER_PAGE}"
        )));
    }
    let desc = match ctx.param("order-direction") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(CfError::BadQueryParameter(format!(
                "order_direction must be 'asc' or 'desc' but was '{other}'"
            )))
        }
    };
    Ok(Paging {
        page,
        per_page,
        desc,
        order_by,
    })
}

/// One page of `items` (already filtered, oldest first) with CC's relative urls.
pub fn page<T>(ctx: &Ctx, base: &str, paging: &Paging, items: Vec<T>) -> Page<T> {
    page_map(ctx, base, paging, items, |x| x)
}

/// [`page`], rendering only the items on the page.
pub fn page_map<S, T>(
    ctx: &Ctx,
    base: &str,
    paging: &Paging,
    mut items: Vec<S>,
    render: impl FnMut(S) -> T,
) -> Page<T> {
    if paging.desc {
        items.reverse();
    }
    let total = items.len();
    let pages = total.div_ceil(paging.per_page);
    let start = (paging.page - 1).saturating_mul(paging.per_page);
    let resources: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(paging.per_page)
        .map(render)
        .collect();
    let url = |page: usize| {
        let mut params: Vec<(String, String)> = vec![
            (
                "order-direction".into(),
                if paging.desc { "desc" } else { "asc" }.into(),
            ),
            ("page".into(), page.to_string()),
            ("results-per-page".into(), paging.per_page.to_string()),
        ];
        if let Some(by) = &paging.order_by {
            params.push(("order-by".into(), by.clone()));
        }
        for key in ["q", "inline-relations-depth"] {
            params.extend(ctx.params(key).map(|v| (key.to_string(), v.to_string())));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        format!("{base}?{}", query.join("&"))
    };
    Page {
        total_results: total,
        total_pages: pages,
        prev_url: (paging.page > 1 && paging.page - 1 <= pages.max(1)).then(|| url(paging.page - 1)),
        next_url: (paging.page < pages).then(|| url(paging.page + 1)),
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::http::parse_query;

    fn ctx(q: &str) -> Ctx {
        Ctx {
            method: http::Method::GET,
            path: "/v2/security_groups".into(),
            query: parse_query(Some(q)),
            headers: Default::default(),
            request_id: "r".into(),
            route: crate::server::route::classify("/v2/security_groups"),
            principal: Default::default(),
            body: Default::default(),
            dry_run: false,
        }
    }

    #[test]
    fn filters_parse_cc_operators() {
        let f = filters(&ctx("q=name%3Aweb"), &["name"]).unwrap();
        assert_eq!(f[0].1.exact(), Some("web"));
        let f = filters(&ctx("q=name%20IN%20a,b;name>=a"), &["name"]).unwrap();
        assert!(f[0].1.matches("b") && !f[0].1.matches("c"));
        assert!(f[1].1.matches("a") && !f[1].1.matches("0"));
        let f = filters(&ctx("q=name:a;;b"), &["name"]).unwrap();
        assert_eq!(f[0].1.exact(), Some("a;b"));
        assert_eq!(
            filters(&ctx("q=space_guid:x"), &["name"]).unwrap_err().to_string(),
            "The query parameter is invalid: space_guid"
        );
    }

    #[test]
    fn pages_and_urls() {
        let c = ctx("results-per-page=2&page=2&q=name>a");
        let p = paging(&c, &[]).unwrap();
        let page = page(&c, "/v2/security_groups", &p, vec![1, 2, 3, 4, 5]);
        assert_eq!(page.resources, vec![3, 4]);
        assert_eq!((page.total_results, page.total_pages), (5, 3));
        assert_eq!(
            page.next_url.as_deref(),
            Some("/v2/security_groups?order-direction=asc&page=3&q=name%3Ea&results-per-page=2")
        );
        assert!(page.prev_url.unwrap().contains("page=1"));
        assert!(paging(&ctx("results-per-page=101"), &[]).is_err());
        assert!(paging(&ctx("order-direction=up"), &[]).is_err());
        assert_eq!(paging(&ctx("order-by=name"), &[]).unwrap_err().status(), 500);
        assert_eq!(
            paging(&ctx("order-by=name"), &["name"]).unwrap().order_by(),
            Some("name")
        );
    }
}
