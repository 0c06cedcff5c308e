//! Entry points for the fuzz targets (`fuzz/`) and for the replay of their
//! seed corpora as ordinary tests (`tests/it/fuzz_corpus.rs`): each takes any
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

/// Every error kind rendered in every dialect: an error status, a JSON body
/// (plain text on the ops port) whose size stays within a small multiple of
/// the message (JSON escapes at most six bytes for one), and error lists
/// that hold no more than the cap whatever the input.
pub fn error_renderers(data: &[u8]) {
    use crate::error::{Error, Kind, Missing};
    use crate::mapping::PlanError;
    use crate::server::route::Dialect;
    use futures_util::FutureExt;
    use http_body_util::BodyExt;
    let text = String::from_utf8_lossy(data).into_owned();
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut capped = crate::dialect::Capped::default();
    let mut listed = Vec::new();
    for line in &lines {
        listed.push(line.clone());
        capped.trim(&mut listed);
    }
    capped.close(&mut listed);
    assert!(listed.len() <= crate::dialect::MAX_LISTED_ERRORS + 1);
    let numbered = || lines.iter().enumerate().map(|(i, l)| (i + 1, l.clone())).collect();
    let kinds = [
        Kind::NotFound(Missing::Group(text.clone())),
        Kind::NotFound(Missing::Rule(text.clone())),
        Kind::NotFound(Missing::Task(text.clone())),
        Kind::NotFound(Missing::Space(text.clone())),
        Kind::NameTaken(text.clone()),
        Kind::Unplannable(PlanError::Rules(numbered())),
        Kind::Unplannable(PlanError::TooMany {
            max: 250,
            at: data.len(),
        }),
        Kind::Unplannable(PlanError::Unsupported(
            lines.iter().map(|l| (l.clone(), l.clone())).collect(),
        )),
        Kind::Refused,
        Kind::Forbidden,
        Kind::Conflict,
        Kind::BackendAuth,
        Kind::Unavailable,
        Kind::Timeout,
        Kind::TaskFailed,
        Kind::Upstream,
        Kind::Unsupported,
        Kind::Internal,
        Kind::Unauthenticated,
        Kind::BadCredentials,
        Kind::AuthUnavailable,
        Kind::TooLarge,
        Kind::BodyTimeout,
        Kind::RequestTimeout,
        Kind::NoRoute,
        Kind::KeyInFlight,
        Kind::KeyReused,
        Kind::KeyAnswerNotKept,
        Kind::MethodNotAllowed,
        Kind::Malformed,
    ];
    for kind in kinds {
        let error = Error::new(kind, text.clone());
        for dialect in [Dialect::Cf, Dialect::CfV3, Dialect::Gcore, Dialect::Ops] {
            let resp = crate::server::rescue::render(dialect, &error, "fuzz-request");
            assert!(resp.status().as_u16() >= 400, "{dialect:?} answered {}", resp.status());
            assert!(resp.headers().contains_key(http::header::CONTENT_TYPE));
            let body = resp
                .into_body()
                .collect()
                .now_or_never()
                .and_then(Result::ok)
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            // The message may appear a few times (text and title, per line);
            // each character escapes to at most six bytes.
            assert!(
                body.len() <= 6 * 4 * (text.len() + 2 * lines.len()) + 4096,
                "{dialect:?}: a {}-byte body for a {}-byte message",
                body.len(),
                text.len()
            );
            if dialect != Dialect::Ops {
                serde_json::from_slice::<serde_json::Value>(&body).expect("an error body is JSON");
            }
        }
    }
}

/// The idempotency layer's parts: the key header, the keep/replay round
/// trip of an answer (kept whole, or past its bound kept as "too large"),
/// and the records' bounds under any sequence of claims, answers and
/// releases.
pub fn idempotency(data: &[u8]) {
    crate::server::idempotency::fuzz(data);
    let limits = crate::store::RecordLimits {
        max_keys: 12,
        max_bytes: 4_000,
        caller_keys: 6,
        caller_bytes: 2_500,
    };
    let records = crate::store::MemoryRecords::new(limits);
    let (claim, ttl) = (std::time::Duration::from_secs(60), std::time::Duration::from_secs(600));
    use crate::store::{Answer, Begin, Records};
    use futures_util::FutureExt;
    for op in data.chunks(3) {
        let [caller, key, what] = [0, 1, 2].map(|i| op.get(i).copied().unwrap_or(0));
        let (who, key) = (format!("caller-{}", caller % 4), format!("key-{}", key % 16));
        let fingerprint = u64::from(what % 2);
        match what % 3 {
            0 => {
                let begun = records.begin(&who, &key, fingerprint, claim).now_or_never();
                if let Some(Ok(Begin::Fresh)) = begun {
                    let answer = Answer {
                        status: 201,
                        headers: Vec::new(),
                        body: vec![b'x'; usize::from(what) * 4],
                    };
                    let _ = records.finish(&who, &key, fingerprint, answer, ttl).now_or_never();
                }
            }
            1 => {
                let _ = records.abandon(&who, &key).now_or_never();
            }
            _ => {
                let _ = records.begin(&who, &key, fingerprint, claim).now_or_never();
            }
        }
        let (keys, bytes) = records.held();
        assert!(
            keys <= limits.max_keys && bytes <= limits.max_bytes,
            "{keys} answers, {bytes} bytes"
        );
    }
}
