//! The gateway's one error: what failed, who is to blame (the caller, the
//! backend or the gateway), whether the same request may be retried, and what
//! a failed write left applied. Opaque outside this module; front ends ask it
//! questions (`kind`, `is_*`) and render it in their dialect in one place each.

use crate::backend::{BackendError, ErrorKind as BackendKind, Injected};
use crate::coord::CoordError;
use crate::mapping::PlanError;
use crate::model::TaskId;
use crate::tasks::WaitError;
use std::fmt;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    Caller,
    Backend,
    Gateway,
}

impl Blame {
    pub fn label(self) -> &'static str {
        match self {
            Blame::Caller => "caller",
            Blame::Backend => "backend",
            Blame::Gateway => "gateway",
        }
    }
}

/// Something the caller named that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Group(String),
    Rule(String),
    Task(String),
    Space(String),
}

/// What a failed write left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing: the backend is as it was.
    Nothing,
    /// The change may still land (the answer was lost, or tasks were still
    /// running at the deadline).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    NotFound(Missing),
    /// A CF name already in use.
    NameTaken(String),
    /// The change cannot be stored on this backend's shape.
    Unplannable(PlanError),
    /// The backend refused the change as invalid.
    Refused,
    /// The caller may not do this.
    Forbidden,
    /// Another writer holds the group past the deadline, or the state conflicts.
    Conflict,
    /// The backend refused the gateway's own credentials.
    BackendAuth,
    /// The backend (or the coordination store) cannot be reached.
    Unavailable,
    /// The deadline passed.
    Timeout,
    /// A backend task ended in ERROR.
    TaskFailed,
    /// The backend answered with a server error or something unreadable.
    Upstream,
    /// The operation has no meaning on this backend.
    Unsupported,
    /// A gateway bug.
    Internal,
    /// No credentials were sent.
    Unauthenticated,
    /// The credentials sent are not valid (unknown, expired, badly signed).
    BadCredentials,
    /// What verifies credentials (the UAA) cannot be reached.
    AuthUnavailable,
    /// The request body is larger than the gateway takes.
    TooLarge,
    /// The request body did not arrive in time.
    BodyTimeout,
    /// The request as a whole took longer than the gateway allows.
    RequestTimeout,
    /// No such route.
    NoRoute,
    /// An `Idempotency-Key` whose first request is still being answered.
    KeyInFlight,
    /// An `Idempotency-Key` first used for a different request.
    KeyReused,
    /// An `Idempotency-Key` whose request was answered with more than the
    /// gateway keeps: the answer cannot be replayed (nor the request run again).
    KeyAnswerNotKept,
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// The request is not HTTP the gateway can read (hyper refused its
    /// request line or headers); the text says which limit.
    Malformed,
}

struct Inner {
    kind: Kind,
    message: String,
    tasks: Vec<TaskId>,
    applied: Applied,
    /// An emulator fault and the status it answers with.
    injected: Option<(Injected, Option<u16>)>,
}

pub struct Error(Box<Inner>);

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("tasks", &self.0.tasks)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            tasks: Vec::new(),
            applied: Applied::Nothing,
            injected: None,
        }))
    }

    pub fn not_found(missing: Missing) -> Self {
        let message = match &missing {
            Missing::Group(g) => format!("security group {g} not found"),
            Missing::Rule(r) => format!("security group rule {r} not found"),
            Missing::Task(t) => format!("task {t} not found"),
            Missing::Space(s) => format!("space {s} not found"),
        };
        Error::new(Kind::NotFound(missing), message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Kind::Internal, message)
    }

    pub fn with_tasks(mut self, tasks: Vec<TaskId>) -> Self {
        self.0.tasks = tasks;
        self
    }

    pub fn with_applied(mut self, applied: Applied) -> Self {
        self.0.applied = applied;
        self
    }

    /// The same error with `context` in front of its message.
    pub fn context(mut self, context: &str) -> Self {
        self.0.message = format!("{context}: {}", self.0.message);
        self
    }

    /// A backend failure; `group` names the group a not-found refers to.
    pub fn backend(e: BackendError, group: Option<&str>) -> Self {
        let kind = match e.kind {
            BackendKind::Invalid => Kind::Refused,
            BackendKind::NotFound => match group {
                Some(g) => Kind::NotFound(Missing::Group(g.to_string())),
                None => Kind::NotFound(Missing::Group(String::new())),
            },
            BackendKind::Conflict => Kind::Conflict,
            BackendKind::Unauthorized => Kind::BackendAuth,
            BackendKind::Unavailable => Kind::Unavailable,
            BackendKind::Timeout => Kind::Timeout,
            BackendKind::Upstream => Kind::Upstream,
            BackendKind::Unsupported => Kind::Unsupported,
        };
        let applied = if e.uncertain {
            Applied::Unknown
        } else {
            Applied::Nothing
        };
        let mut error = Error::new(kind, e.message).with_applied(applied);
        error.0.injected = e.injected.map(|i| (i, e.status));
        error
    }

    /// The emulator fault this error carries, if one caused it, with the
    /// status it answers: the Gcore front end answers it as the emulated
    /// API would; other dialects see it as a gateway sees its backend fail.
    pub fn injected(&self) -> Option<(Injected, Option<u16>)> {
        self.0.injected
    }

    pub fn wait(e: WaitError) -> Self {
        match e {
            WaitError::Failed { id, error } => {
                Error::new(Kind::TaskFailed, format!("the backend task {id} failed: {error}")).with_tasks(vec![id])
            }
            WaitError::Deadline { pending, last_error } => {
                let ids: Vec<&str> = pending.iter().map(|i| i.as_str()).collect();
                let mut message = format!(
                    "the backend tasks {} did not finish before the deadline; look them up at /cloud/v1/tasks/<id>",
                    ids.join(", ")
                );
                if let Some(last) = last_error {
                    message.push_str(&format!(" (the last poll failed: {last})"));
                }
                Error::new(Kind::Timeout, message)
                    .with_tasks(pending)
                    .with_applied(Applied::Unknown)
            }
        }
    }

    pub fn plan(e: PlanError) -> Self {
        let message = e.to_string();
        Error::new(Kind::Unplannable(e), message)
    }

    pub fn coord(e: CoordError) -> Self {
        Error::new(Kind::Unavailable, e.to_string())
    }

    pub fn kind(&self) -> &Kind {
        &self.0.kind
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Who is to blame and why, as the access line's `cause` shows it.
    pub fn cause(&self) -> impl fmt::Display + '_ {
        struct Cause<'a>(&'a Error);
        impl fmt::Display for Cause<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}: {}", self.0.blame().label(), self.0.message())
            }
        }
        Cause(self)
    }

    /// Tasks the failure concerns (failed, or still running).
    pub fn tasks(&self) -> &[TaskId] {
        &self.0.tasks
    }

    pub fn applied(&self) -> Applied {
        self.0.applied
    }

    pub fn blame(&self) -> Blame {
        match self.0.kind {
            Kind::NotFound(_)
            | Kind::NameTaken(_)
            | Kind::Unplannable(_)
            | Kind::Refused
            | Kind::Forbidden
            | Kind::Unauthenticated
            | Kind::BadCredentials
            | Kind::TooLarge
            | Kind::BodyTimeout
            | Kind::NoRoute
            | Kind::KeyInFlight
            | Kind::KeyReused
            | Kind::KeyAnswerNotKept
            | Kind::Malformed
            | Kind::MethodNotAllowed => Blame::Caller,
            Kind::Conflict
            | Kind::Unavailable
            | Kind::Timeout
            | Kind::TaskFailed
            | Kind::Upstream
            | Kind::Unsupported => Blame::Backend,
            Kind::BackendAuth | Kind::Internal | Kind::RequestTimeout | Kind::AuthUnavailable => Blame::Gateway,
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.0.kind,
            Kind::Conflict
                | Kind::Unavailable
                | Kind::Timeout
                | Kind::Upstream
                | Kind::RequestTimeout
                | Kind::KeyInFlight
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.0.kind, Kind::NotFound(_))
    }

    pub fn is_conflict(&self) -> bool {
        self.0.kind == Kind::Conflict
    }

    pub fn is_timeout(&self) -> bool {
        self.0.kind == Kind::Timeout
    }
}

impl From<CoordError> for Error {
    fn from(e: CoordError) -> Self {
        Error::coord(e)
    }
}
