//! `/_emulator/…`: the embedded backend's controls, on the admin listener
//! only, for admin credentials (a CF admin or a Gcore key for every
//! project). `GET|PUT|DELETE /_emulator/faults`, `POST /_emulator/reset`,
//! `GET|PUT /_emulator/state` (the `store export` format) and
//! `GET|PUT /_emulator/timing`. Errors are `{"error": …}` with the field at
//! fault named where there is one.

use super::http::{json, raw, Ctx, Resp};
use super::route::RouteId;
use super::App;
use crate::backend::embedded::{Embedded, Timing};
use crate::config::faults::{FaultSpec, Operation};
use crate::error::{Error, Kind};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// The most faults one `PUT` arms.
const MAX_FAULTS: usize = 256;

/// A refusal of the emulator API.
struct Refused {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

fn bad(error: impl Into<String>, field: Option<String>) -> Refused {
    Refused {
        status: StatusCode::BAD_REQUEST,
        error: error.into(),
        field,
    }
}

impl Refused {
    fn into_response(self) -> Resp {
        let mut body = json!({ "error": self.error });
        if let Some(f) = self.field {
            body["field"] = Value::String(f);
        }
        json(self.status, &body)
    }
}

/// A gateway error as the emulator API answers it.
pub fn render(e: &Error) -> Resp {
    crate::journal::failed(e.cause());
    json(plain_status(e.kind()), &json!({ "error": e.message() }))
}

/// The status of a gateway error on the front ends with no wire dialect of
/// their own (the emulator's controls, the page).
pub fn plain_status(kind: &Kind) -> StatusCode {
    match kind {
        Kind::NoRoute => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Unauthenticated | Kind::BadCredentials => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::AuthUnavailable | Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Malformed | Kind::Refused => StatusCode::BAD_REQUEST,
        Kind::BodyTimeout | Kind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub async fn handle(app: &App, ctx: &Ctx) -> Resp {
    let Some(emulator) = app.emulator.as_ref() else {
        return render(&Error::new(
            Kind::NoRoute,
            "the emulator's controls serve the embedded backend only",
        ));
    };
    let answer = if ctx.dry_run {
        Err(bad("the emulator's controls have no dry run", Some("dry_run".into())))
    } else {
        route(emulator, ctx).await
    };
    match answer {
        Ok(resp) => resp,
        Err(refused) => {
            crate::journal::refused(refused.status.as_u16(), &refused.error);
            refused.into_response()
        }
    }
}

async fn route(emulator: &Embedded, ctx: &Ctx) -> Result<Resp, Refused> {
    use RouteId as R;
    match (ctx.route.id, &ctx.method) {
        (R::EmulatorFaults, &Method::GET) => Ok(json(StatusCode::OK, &emulator.faults())),
        (R::EmulatorFaults, &Method::PUT) => {
            emulator.set_faults(faults(&ctx.body)?);
            Ok(json(StatusCode::OK, &emulator.faults()))
        }
        (R::EmulatorFaults, &Method::DELETE) => {
            emulator.set_faults(Vec::new());
            Ok(json(StatusCode::OK, &emulator.faults()))
        }
        (R::EmulatorReset, &Method::POST) => {
            emulator.reset().await.map_err(unavailable)?;
            Ok(json(StatusCode::OK, &json!({"reset": true})))
        }
        (R::EmulatorState, &Method::GET) => {
            let text = emulator.snapshot_text().map_err(unavailable)?;
            Ok(raw(StatusCode::OK, "application/x-ndjson", Bytes::from(text)))
        }
        (R::EmulatorState, &Method::PUT) => {
            let text = std::str::from_utf8(&ctx.body).map_err(|_| bad("the snapshot is not UTF-8", None))?;
            let restored = emulator.restore_snapshot(text).await.map_err(|e| bad(e, None))?;
            Ok(json(StatusCode::OK, &restored))
        }
        (R::EmulatorTiming, &Method::GET) => Ok(json(StatusCode::OK, &emulator.timing())),
        (R::EmulatorTiming, &Method::PUT) => {
            emulator.set_timing(timing(&ctx.body)?);
            Ok(json(StatusCode::OK, &emulator.timing()))
        }
        (R::EmulatorOther, _) => Err(Refused {
            status: StatusCode::NOT_FOUND,
            error: "Not Found".into(),
            field: None,
        }),
        _ => Err(Refused {
            status: StatusCode::METHOD_NOT_ALLOWED,
            error: format!("{} is not served on {}", ctx.method, ctx.route.id.template()),
            field: None,
        }),
    }
}

fn unavailable(e: String) -> Refused {
    Refused {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: e,
        field: None,
    }
}

fn body_json(body: &[u8]) -> Result<Value, Refused> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}"), None))
}

/// `{"faults": [...]}` (or a bare list), each fault checked; the first bad
/// one is refused with its place and field.
fn faults(body: &[u8]) -> Result<Vec<FaultSpec>, Refused> {
    let list = match body_json(body)? {
        Value::Array(list) => list,
        Value::Object(mut o) => match o.remove("faults") {
            Some(Value::Array(list)) if o.is_empty() => list,
            _ => return Err(bad("the body is {\"faults\": [ … ]}", Some("faults".into()))),
        },
        _ => return Err(bad("the body is {\"faults\": [ … ]}", Some("faults".into()))),
    };
    if list.len() > MAX_FAULTS {
        return Err(bad(format!("at most {MAX_FAULTS} faults"), Some("faults".into())));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            FaultSpec::from_json(v).map_err(|e| {
                let field = format!("faults[{i}].{}", e.field);
                bad(format!("{field}: {}", e.message), Some(field))
            })
        })
        .collect()
}

fn timing(body: &[u8]) -> Result<Timing, Refused> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        task_delay_ms: u64,
        #[serde(default)]
        task_delays_ms: std::collections::BTreeMap<String, u64>,
    }
    let raw: Raw = serde_json::from_value(body_json(body)?).map_err(|e| bad(e.to_string(), None))?;
    const MAX: u64 = 86_400_000;
    if raw.task_delay_ms > MAX {
        return Err(bad(format!("at most {MAX}"), Some("task_delay_ms".into())));
    }
    let mut task_delays_ms = std::collections::BTreeMap::new();
    for (name, ms) in raw.task_delays_ms {
        let field = Some(format!("task_delays_ms.{name}"));
        let op = Operation::parse(&name)
            .filter(|o| o.starts_tasks())
            .ok_or_else(|| bad(format!("{name:?} is not an operation that starts tasks"), field.clone()))?;
        if ms > MAX {
            return Err(bad(format!("at most {MAX}"), field));
        }
        task_delays_ms.insert(op, ms);
    }
    Ok(Timing {
        task_delay_ms: raw.task_delay_ms,
        task_delays_ms,
    })
}
