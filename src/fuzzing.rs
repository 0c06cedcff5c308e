//! Entry points for the fuzz targets (`fuzz/`) and for the replay of their
//! seed corpora as ordinary tests (`tests/fuzz_corpus.rs`): each takes any
//! bytes, must not panic, and checks what must hold for the input it
//! accepts. One function per hand-written parser.

use crate::dialect::cf::{self, CfFlags, Mode};
use crate::dialect::gcore::body::{self as gcore_body, GcoreFlags};
use crate::dialect::gcore::rule::{to_spec, ApiVersion};
use crate::json::{Element, ObjectList};
use crate::model::IpRange;

const ALL_FLAGS: [CfFlags; 4] = [
    CfFlags {
        comma_delimited_destinations: false,
        ipv6: false,
    },
    CfFlags {
        comma_delimited_destinations: true,
        ipv6: false,
    },
    CfFlags {
        comma_delimited_destinations: false,
        ipv6: true,
    },
    CfFlags {
        comma_delimited_destinations: true,
        ipv6: true,
    },
];

/// The shallow JSON reader.
pub fn json(data: &[u8]) {
    let _ = serde_json::from_slice::<Element>(data);
    let _ = serde_json::from_slice::<ObjectList>(data);
}

/// CF destinations: what parses renders in CF's spelling and parses back to
/// the same ranges.
pub fn cf_destination(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for flags in ALL_FLAGS {
        let Some(ranges) = cf::destination::parse(text, flags) else {
            continue;
        };
        let shown: Vec<String> = ranges.iter().map(IpRange::to_string).collect();
        for (range, text) in ranges.iter().zip(&shown) {
            let again = cf::destination::parse(text, ALL_FLAGS[3]).unwrap_or_else(|| panic!("{text} does not parse"));
            assert_eq!(again.as_slice(), [*range], "{text}");
        }
    }
}

/// CF `ports`: what parses is a list of valid ranges.
pub fn cf_ports(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(ranges) = cf::ports::parse(text) {
        assert!(!ranges.is_empty());
        assert!(ranges.iter().all(|r| r.lo() >= 1 && r.lo() <= r.hi()));
    }
}

/// CF rule lists: the rendering of what parses is a fixed point.
pub fn cf_rules(data: &[u8]) {
    for flags in ALL_FLAGS {
        let Ok(rules) = cf::body::parse_rules(data, flags) else {
            continue;
        };
        let Ok(shown) = cf::render::rules(&rules, flags) else {
            continue;
        };
        let bytes = serde_json::to_vec(&shown).expect("rendered rules serialise");
        let again = cf::body::parse_rules(&bytes, flags).expect("rendered rules parse");
        assert_eq!(cf::render::rules(&again, flags).ok(), Some(shown));
    }
}

/// CF v2 create and update bodies.
pub fn cf_body(data: &[u8]) {
    for mode in [Mode::Create, Mode::Update] {
        let _ = cf::body::parse(data, mode, ALL_FLAGS[3]);
    }
}

/// Gcore create, PATCH, rule and copy bodies: rules that parse go back to
/// the wire and parse to the same atoms.
pub fn gcore_body(data: &[u8]) {
    let flags = GcoreFlags {
        smtp_blocked: false,
        ..GcoreFlags::default()
    };
    if let Ok(Some(rules)) = gcore_body::parse_create(data, flags).map(|c| c.rules) {
        let specs: Vec<_> = rules.iter().map(to_spec).collect();
        let bytes = serde_json::to_vec(&specs).expect("specs serialise");
        let again = gcore_body::parse_rule_list(&bytes, flags).expect("rendered rules parse");
        assert_eq!(again, rules);
    }
    let _ = gcore_body::parse_patch(data, flags);
    let _ = gcore_body::parse_rule(data, ApiVersion::V1, flags);
    let _ = gcore_body::parse_rule(data, ApiVersion::V2, flags);
    let _ = gcore_body::parse_copy(data);
}

/// Query strings, and the CF `q` filters and paging read from them.
pub fn query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs = crate::server::http::parse_query(Some(text));
    let ctx = crate::server::http::Ctx {
        dry_run: false,
        method: http::Method::GET,
        path: "/v2/security_groups".into(),
        query: pairs,
        headers: Default::default(),
        request_id: String::new(),
        route: crate::server::route::classify("/v2/security_groups"),
        principal: Default::default(),
        body: Default::default(),
    };
    let _ = crate::server::cf::v2::query::filters(&ctx, &["name", "organization_guid"]);
    if let Ok(paging) = crate::server::cf::v2::query::paging(&ctx, &["name"]) {
        let page = crate::server::cf::v2::query::page(&ctx, "/v2/security_groups", &paging, vec![1, 2, 3]);
        assert!(page.resources.len() <= 3);
    }
    let _ = crate::server::gcore::tasks::parse_query(&ctx);
}
