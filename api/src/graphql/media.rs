//! GraphQL over HTTP: which media type an answer is written in, and with which status.
//!
//! The specification (graphql-over-http) gives two media types. `application/json` is the legacy one: every
//! well-formed request answers 200, whatever the GraphQL errors. `application/graphql-response+json` lets the status
//! tell a *request error* (the document does not parse or validate, a variable does not coerce: nothing executed)
//! with 400 and no `data` entry. The client says which it reads in `Accept`; a client that says nothing gets
//! `application/json`, as the specification asks. The hub adds one rule for both: an answer whose failure is the
//! store being unreachable is 503 with `Retry-After`, so that clients and load balancers know to retry.

use async_graphql::{Response as GraphQLAnswer, ServerError};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::code;

/// Seconds a client should wait before retrying an answer refused because the store is unreachable.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The media type an answer is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/json`: 200 for every well-formed request.
    Json,
    /// `application/graphql-response+json`: request errors are 400 without `data`.
    GraphQLResponse,
}

impl Media {
    pub fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

/// The media type to answer in, from the request's `Accept` headers: the supported type the client weighs most
/// (`q`), the first listed on a tie; `*/*` and `application/*` are read as `application/json`. No `Accept` header is
/// `application/json`. `None` when the client accepts neither (406).
pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Some(Media::Json);
    }
    let mut best: Option<(u16, Media)> = None;
    for value in values {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let media = match media_type.as_str() {
                "application/graphql-response+json" => Media::GraphQLResponse,
                "application/json" | "application/*" | "*/*" => Media::Json,
                _ => continue,
            };
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(quality)
                .unwrap_or(1000);
            if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, media));
            }
        }
    }
    best.map(|(_, media)| media)
}

/// A `q` value in thousandths (`0.5` → 500); `None` when malformed.
fn quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    let value = whole * 1000 + fraction;
    (value <= 1000).then_some(value)
}

fn error_code(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Whether nothing executed: no data, and no error belongs to a field (parse, validation, variable coercion, a
/// document limit).
fn is_request_error(answer: &GraphQLAnswer) -> bool {
    answer.data == async_graphql::Value::Null
        && !answer.errors.is_empty()
        && answer.errors.iter().all(|error| error.path.is_empty())
}

/// What a request error's body holds under `application/graphql-response+json`: no `data` entry.
#[derive(serde::Serialize)]
struct RequestError<'a> {
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

/// The status an executed answer travels with.
fn status_of(answer: &GraphQLAnswer, media: Media) -> StatusCode {
    if answer.errors.iter().any(|error| error_code(error) == Some(code::SERVICE_UNAVAILABLE)) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if media == Media::GraphQLResponse && is_request_error(answer) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// The HTTP answer to an executed GraphQL request.
pub fn respond(mut answer: GraphQLAnswer, media: Media) -> Response {
    if let Some(id) = crate::observe::request_id() {
        for error in &mut answer.errors {
            error.extensions.get_or_insert_with(Default::default).set("requestId", &*id);
        }
    }
    let status = status_of(&answer, media);
    let body = if media == Media::GraphQLResponse && is_request_error(&answer) {
        serde_json::to_vec(&RequestError { errors: &answer.errors, extensions: &answer.extensions })
    } else {
        serde_json::to_vec(&answer)
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL answer could not be written as JSON");
            return crate::http::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_SERVER_ERROR,
                "erreur interne : la réponse n'a pas pu être écrite",
            );
        }
    };
    let mut response = bytes(Bytes::from(body), media);
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    for (name, value) in answer.http_headers.iter() {
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// A successful answer's bytes (from the answer cache), 200.
pub fn bytes(body: Bytes, media: Media) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()))], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> Option<Media> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        negotiate(&headers)
    }

    #[test]
    fn the_client_s_preference_decides_the_media_type() {
        assert_eq!(accept(&[]), Some(Media::Json));
        assert_eq!(accept(&["application/json"]), Some(Media::Json));
        assert_eq!(accept(&["application/graphql-response+json"]), Some(Media::GraphQLResponse));
        assert_eq!(accept(&["application/graphql-response+json, application/json"]), Some(Media::GraphQLResponse));
        assert_eq!(accept(&["application/json, application/graphql-response+json"]), Some(Media::Json));
        assert_eq!(
            accept(&["application/json;q=0.9, application/graphql-response+json"]),
            Some(Media::GraphQLResponse)
        );
        assert_eq!(accept(&["application/graphql-response+json;q=0, */*"]), Some(Media::Json));
        assert_eq!(accept(&["text/html"]), None);
        assert_eq!(accept(&["text/html", "application/*;q=0.2"]), Some(Media::Json));
        assert_eq!(accept(&["application/json;q=0"]), None);
    }

    #[test]
    fn quality_values_are_read_exactly() {
        assert_eq!(quality("1"), Some(1000));
        assert_eq!(quality("0.5"), Some(500));
        assert_eq!(quality("0.125"), Some(125));
        assert_eq!(quality("1.000"), Some(1000));
        assert_eq!(quality("1.5"), None);
        assert_eq!(quality("0.1234"), None);
        assert_eq!(quality("x"), None);
    }

    fn coded(message: &str, value: &str, path: bool) -> ServerError {
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", value);
        if path {
            error.path.push(async_graphql::PathSegment::Field("measure".into()));
        }
        error
    }

    #[test]
    fn request_errors_are_400_without_data_only_in_the_graphql_response_media_type() {
        let answer = GraphQLAnswer::from_errors(vec![coded("bad", code::GRAPHQL_PARSE_FAILED, false)]);
        assert_eq!(status_of(&answer, Media::GraphQLResponse), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&answer, Media::Json), StatusCode::OK);
        // A field error is not a request error.
        let answer = GraphQLAnswer::from_errors(vec![coded("nope", code::NOT_FOUND, true)]);
        assert_eq!(status_of(&answer, Media::GraphQLResponse), StatusCode::OK);
        let unavailable = GraphQLAnswer::from_errors(vec![coded("down", code::SERVICE_UNAVAILABLE, true)]);
        assert_eq!(status_of(&unavailable, Media::Json), StatusCode::SERVICE_UNAVAILABLE);
        let response = respond(unavailable, Media::Json);
        assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
    }
}
