//! The API layer's error type and its one mapping to GraphQL errors with a stable `extensions.code`.
//!
//! Internal causes (database, I/O) are logged with their chain and never sent: the client sees a generic message and
//! `INTERNAL_SERVER_ERROR`.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// The stable values of `extensions.code`. Clients switch on these; never rename one.
pub mod code {
    /// No token, or a token the hub does not accept.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated, but the role may not perform this operation.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The object does not exist, or lies outside the caller's territory (indistinguishable on purpose).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// An argument is malformed (a code of the wrong shape, an amount that is not a decimal…).
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// A write broke business rules; `extensions.violations` lists every one.
    pub const VALIDATION_FAILED: &str = "VALIDATION_FAILED";
    /// `expectedVersion` is missing or is not the stored version; `extensions.currentVersion` gives the stored one
    /// when the object exists.
    pub const VERSION_CONFLICT: &str = "VERSION_CONFLICT";
    /// An idempotency key was reused with another input.
    pub const IDEMPOTENCY_CONFLICT: &str = "IDEMPOTENCY_CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The database or another dependency is unreachable; retry later.
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// The HTTP request is not a GraphQL request (bad JSON, wrong content type, body too large…).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The GraphQL document does not parse.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The document parses but does not fit the schema (unknown field, wrong argument or variable type, too deep…).
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// The GraphQL document passes a size limit checked before any work (tokens, nesting of values or selections,
    /// fragments, fields once expanded); `extensions.limit` names it and `extensions.max` gives its value.
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    /// A bug or an unexpected failure inside the hub; details are in its logs, never in the answer.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

    /// Every code, for documentation and tests.
    pub const ALL: &[&str] = &[
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        BAD_USER_INPUT,
        VALIDATION_FAILED,
        VERSION_CONFLICT,
        IDEMPOTENCY_CONFLICT,
        RATE_LIMITED,
        SERVICE_UNAVAILABLE,
        BAD_REQUEST,
        GRAPHQL_PARSE_FAILED,
        GRAPHQL_VALIDATION_FAILED,
        QUERY_TOO_COMPLEX,
        INTERNAL_SERVER_ERROR,
    ];
}

/// One rule a write broke, with the path of the offending field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub path: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadUserInput(String),
    #[error("{0}")]
    Forbidden(String),
    /// `expectedVersion` missing or stale; `current_version` is the stored version (None when nothing is stored).
    #[error("{message}")]
    VersionConflict { message: String, current_version: Option<i32> },
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("la saisie ne respecte pas {} règle(s)", .0.len())]
    ValidationFailed(Vec<Violation>),
    #[error("base de données indisponible, réessayez plus tard")]
    Unavailable(#[source] DbErr),
    #[error("erreur interne du hub")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => code::NOT_FOUND,
            ApiError::BadUserInput(_) => code::BAD_USER_INPUT,
            ApiError::Forbidden(_) => code::FORBIDDEN,
            ApiError::VersionConflict { .. } => code::VERSION_CONFLICT,
            ApiError::IdempotencyConflict(_) => code::IDEMPOTENCY_CONFLICT,
            ApiError::ValidationFailed(_) => code::VALIDATION_FAILED,
            ApiError::Unavailable(_) => code::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => code::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match classify(&err) {
            DbFailure::Unavailable => ApiError::Unavailable(err),
            DbFailure::RefusedText => {
                ApiError::BadUserInput("un texte contient un caractère refusé par la base (U+0000, NUL)".into())
            }
            DbFailure::Other => ApiError::Internal(Box::new(err)),
        }
    }
}

/// What a database error means for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum DbFailure {
    /// The store cannot be reached or is shutting down, the pool is exhausted, SQLite is locked: retry later.
    Unavailable,
    /// The store refused a character of a text (PostgreSQL refuses NUL): the caller's input.
    RefusedText,
    /// Anything else: a fault of the hub.
    Other,
}

/// Reads a database error: a lost connection mid-request (backend terminated, network cut) comes as an execution
/// error carrying an I/O or protocol error, or a SQLSTATE of class 08 or 57P0x, not as a connection error.
pub fn classify(err: &DbErr) -> DbFailure {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return DbFailure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return DbFailure::Other,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => DbFailure::Unavailable,
        Sqlx::Database(db) => sqlstate_failure(db.code().as_deref().unwrap_or(""), db.message()),
        _ => DbFailure::Other,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes (sqlx gives SQLite's extended code as the text of a number).
fn sqlstate_failure(state: &str, message: &str) -> DbFailure {
    match state {
        // connection_exception class; admin_shutdown, crash_shutdown, cannot_connect_now; too_many_connections.
        s if s.starts_with("08") => DbFailure::Unavailable,
        "57P01" | "57P02" | "57P03" | "53300" => DbFailure::Unavailable,
        // character_not_in_repertoire (NUL in a text), untranslatable_character.
        "22021" | "22P05" => DbFailure::RefusedText,
        // SQLITE_BUSY, SQLITE_LOCKED and their extended codes (low byte 5 or 6).
        s if s.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)) => DbFailure::Unavailable,
        _ if message.contains("database is locked") => DbFailure::Unavailable,
        _ => DbFailure::Other,
    }
}

fn log_chain(err: &(dyn std::error::Error + 'static)) {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "request failed");
}

impl ApiError {
    /// A version conflict on an object stored at `current_version`.
    pub fn version_conflict(message: impl Into<String>, current_version: Option<i32>) -> ApiError {
        ApiError::VersionConflict { message: message.into(), current_version }
    }

    /// The one mapping to a GraphQL error: message, `extensions.code`, and what else the code promises
    /// (`violations`, `currentVersion`).
    fn to_graphql(&self) -> async_graphql::Error {
        let code = self.code();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            match self {
                ApiError::ValidationFailed(violations) => {
                    let list: Vec<async_graphql::Value> = violations
                        .iter()
                        .map(|v| {
                            let mut map = async_graphql::indexmap::IndexMap::new();
                            map.insert(async_graphql::Name::new("path"), async_graphql::Value::from(v.path.clone()));
                            map.insert(async_graphql::Name::new("code"), async_graphql::Value::from(v.code.clone()));
                            map.insert(
                                async_graphql::Name::new("message"),
                                async_graphql::Value::from(v.message.clone()),
                            );
                            async_graphql::Value::Object(map)
                        })
                        .collect();
                    ext.set("violations", list);
                }
                ApiError::VersionConflict { current_version: Some(version), .. } => {
                    ext.set("currentVersion", *version);
                }
                _ => {}
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        if matches!(err, ApiError::Unavailable(_) | ApiError::Internal(_)) {
            log_chain(&err);
        }
        err.to_graphql()
    }
}

/// A failure shared by several waiters (a batch loader's error); keeps its code and message.
#[derive(Clone, Debug)]
pub struct SharedError(pub std::sync::Arc<ApiError>);

impl From<ApiError> for SharedError {
    fn from(err: ApiError) -> Self {
        SharedError(std::sync::Arc::new(err))
    }
}

impl From<SharedError> for async_graphql::Error {
    fn from(err: SharedError) -> Self {
        match std::sync::Arc::try_unwrap(err.0) {
            Ok(err) => err.into(),
            Err(shared) => shared.to_graphql(),
        }
    }
}

/// A stored text that should belong to a closed vocabulary: anything else is a fault of the hub, not of the caller.
pub fn stored<T>(value: Option<T>, what: &str, text: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal(format!("stored {what} « {text} » is not in the vocabulary").into()))
}

/// Result of a resolver: any `?` on an [`ApiError`] becomes a coded GraphQL error.
pub type ApiResult<T> = Result<T, async_graphql::Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: ApiError) -> (String, String) {
        let gql: async_graphql::Error = err.into();
        let ext = gql.extensions.expect("every error carries extensions");
        let code = match ext.get("code") {
            Some(async_graphql::Value::String(s)) => s.clone(),
            other => panic!("code missing: {other:?}"),
        };
        (code, gql.message)
    }

    #[test]
    fn each_error_maps_to_its_stable_code() {
        assert_eq!(code_of(ApiError::NotFound("x".into())).0, "NOT_FOUND");
        assert_eq!(code_of(ApiError::BadUserInput("x".into())).0, "BAD_USER_INPUT");
        assert_eq!(code_of(ApiError::ValidationFailed(vec![])).0, "VALIDATION_FAILED");
        assert_eq!(
            code_of(ApiError::from(DbErr::Conn(sea_orm::RuntimeErr::Internal("down".into())))).0,
            "SERVICE_UNAVAILABLE"
        );
    }

    #[test]
    fn lost_connections_and_locks_are_unavailable_and_nul_is_the_caller_s() {
        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as Sqlx;
        let exec = |e: Sqlx| DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(e)));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(classify(&exec(Sqlx::Io(reset))), DbFailure::Unavailable);
        assert_eq!(classify(&exec(Sqlx::PoolTimedOut)), DbFailure::Unavailable);
        assert_eq!(classify(&exec(Sqlx::RowNotFound)), DbFailure::Other);
        assert_eq!(
            sqlstate_failure("57P01", "terminating connection due to administrator command"),
            DbFailure::Unavailable
        );
        assert_eq!(sqlstate_failure("08006", "connection failure"), DbFailure::Unavailable);
        assert_eq!(sqlstate_failure("5", "database is locked"), DbFailure::Unavailable);
        assert_eq!(sqlstate_failure("517", "database is locked"), DbFailure::Unavailable);
        assert_eq!(
            sqlstate_failure("22021", "invalid byte sequence for encoding \"UTF8\": 0x00"),
            DbFailure::RefusedText
        );
        assert_eq!(sqlstate_failure("23505", "duplicate key"), DbFailure::Other);
        assert_eq!(sqlstate_failure("2067", "UNIQUE constraint failed"), DbFailure::Other);
        assert_eq!(code_of(ApiError::from(exec(Sqlx::PoolClosed))).0, "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn internal_causes_are_never_sent() {
        let (code, message) = code_of(ApiError::from(DbErr::Custom("SELECT secret FROM table".into())));
        assert_eq!(code, "INTERNAL_SERVER_ERROR");
        assert!(!message.contains("SELECT"), "{message}");
    }

    #[test]
    fn a_version_conflict_gives_the_current_version() {
        let gql: async_graphql::Error = ApiError::version_conflict("x", Some(3)).into();
        let ext = gql.extensions.expect("extensions");
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("VERSION_CONFLICT")));
        assert_eq!(ext.get("currentVersion"), Some(&async_graphql::Value::from(3)));
        let gql: async_graphql::Error = ApiError::version_conflict("x", None).into();
        assert_eq!(gql.extensions.and_then(|e| e.get("currentVersion").cloned()), None);
    }

    #[test]
    fn validation_failures_list_every_violation() {
        let err = ApiError::ValidationFailed(vec![
            Violation { path: "input.finess".into(), code: "FINESS_CHECK_DIGIT".into(), message: "a".into() },
            Violation { path: "input.amount".into(), code: "NEGATIVE_AMOUNT".into(), message: "b".into() },
        ]);
        let gql: async_graphql::Error = err.into();
        match gql.extensions.and_then(|e| e.get("violations").cloned()) {
            Some(async_graphql::Value::List(items)) => assert_eq!(items.len(), 2),
            other => panic!("violations missing: {other:?}"),
        }
    }
}
