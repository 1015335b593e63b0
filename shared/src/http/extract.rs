//! Extractors that turn bad input into 4xx problem documents instead of axum's plain-text rejections.
//!
//! `Json` accepts only `application/json` (or `+json`) bodies of at most [`MAX_BODY_BYTES`]; `Query` refuses
//! unknown or malformed parameters. Neither echoes the values it refuses, so a mistyped secret never comes
//! back in a response or a log line.

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::header;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// The largest request body any endpoint reads, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body, parsed into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Describes a JSON error without quoting the input: serde's messages for wrong types and values include the
/// offending value, which may be a password.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let place = format!("line {}, column {}", error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Data => {
            if message.starts_with("missing field") || message.starts_with("unknown field") {
                let field_part = message.split(" at line").next().unwrap_or(&message);
                format!("the body does not have the expected shape: {field_part}")
            } else {
                format!("the body does not have the expected shape: a value has the wrong type or is out of range at {place}")
            }
        }
        serde_json::error::Category::Syntax => format!("the body is not valid JSON: syntax error at {place}"),
        serde_json::error::Category::Eof => "the body is not valid JSON: it ends too early".to_owned(),
        serde_json::error::Category::Io => "the body could not be read".to_owned(),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|error| {
            let over_limit = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                .any(|cause| cause.is::<http_body_util::LengthLimitError>());
            if over_limit {
                ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES }
            } else {
                ApiError::InvalidBody("the body could not be read".to_owned())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|error| ApiError::InvalidBody(describe_json_error(&error)))
    }
}

/// The query parameters of a request, read one by one so that every error names its parameter.
///
/// A handler takes the parameters it knows with [`Params::text`] and [`Params::number`] and ends with
/// [`Params::finish`], which refuses any parameter it did not take. A parameter given twice is refused too.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from a raw query string.
    pub fn parse(query: &str) -> Self {
        let pairs = form_urlencoded::parse(query.as_bytes()).map(|(name, value)| (name.into_owned(), value.into_owned()));
        Self { pairs: pairs.collect() }
    }

    /// Removes and returns the parameter's value, if given.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`] when it is given more than once.
    pub fn text(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = Vec::new();
        self.pairs.retain(|(key, value)| {
            let hit = key == name;
            if hit {
                values.push(value.clone());
            }
            !hit
        });
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ApiError::InvalidParameter { param: name.to_owned(), detail: "given more than once".to_owned() }),
        }
    }

    /// Removes and parses the parameter, if given, as a whole number.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`] when it is given twice or is not a whole number of this type.
    pub fn number<N: std::str::FromStr>(&mut self, name: &str) -> Result<Option<N>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| ApiError::InvalidParameter {
                param: name.to_owned(),
                detail: "must be a whole number in range".to_owned(),
            }),
        }
    }

    /// Ends reading.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`] naming the first parameter nobody took.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => {
                let shown: String = name.chars().take(40).collect();
                Err(ApiError::InvalidParameter { param: shown, detail: "unknown parameter".to_owned() })
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or_default()))
    }
}

/// The most request body a host reads before routing (far above every endpoint's own limit).
pub const MAX_BUFFERED_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Host middleware: reads the whole request body (up to [`MAX_BUFFERED_BODY_BYTES`]) before routing.
///
/// A route may answer without reading the body (405, 415, 413 from `Content-Length`). If the server then closes
/// the connection while the client is still sending, the client sees a reset instead of the problem document;
/// reading the body first lets every client read its answer. A larger body gets a 413 problem document.
pub async fn buffer_body(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BUFFERED_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => ApiError::PayloadTooLarge { limit: MAX_BUFFERED_BODY_BYTES }.into_response(),
    }
}
