//! Error classification: one [`ErrorClass`] for a failed call, from every signal a dialect gives.
//!
//! Rules, in order (first match wins):
//! 1. a finish reason that means the provider's safety filter stopped the output → `content_filtered`;
//! 2. the text patterns of [`TEXT_RULES`] over `error.type`, exception types and messages and the
//!    status message (lower-cased, in that order of rules, not of signals);
//! 3. the HTTP status code (`http.response.status_code`, or `error.type` when it is a number);
//! 4. `other`.
//!
//! A call is an error when its span status is ERROR, it has `error.type`, an `exception` event, an
//! HTTP status >= 400, or a content-filter finish reason.

use crate::record::ErrorClass;

/// Finish reasons that mean the output was blocked by a safety system.
pub static CONTENT_FILTER_FINISH_REASONS: &[&str] = &[
    "content_filter",
    "safety",
    "blocklist",
    "prohibited_content",
    "spii",
    "refusal",
    "content-filter",
];

/// Ordered (pattern, class) rules matched as substrings of the lower-cased error text.
pub static TEXT_RULES: &[(&str, ErrorClass)] = &[
    ("context_length", ErrorClass::ContextLengthExceeded),
    ("context length", ErrorClass::ContextLengthExceeded),
    ("contextwindow", ErrorClass::ContextLengthExceeded),
    ("context_window", ErrorClass::ContextLengthExceeded),
    ("context window", ErrorClass::ContextLengthExceeded),
    ("maximum context", ErrorClass::ContextLengthExceeded),
    ("prompt is too long", ErrorClass::ContextLengthExceeded),
    ("too many tokens", ErrorClass::ContextLengthExceeded),
    ("content_filter", ErrorClass::ContentFiltered),
    ("contentfilter", ErrorClass::ContentFiltered),
    ("content filter", ErrorClass::ContentFiltered),
    ("content_policy", ErrorClass::ContentFiltered),
    ("content policy", ErrorClass::ContentFiltered),
    ("safety", ErrorClass::ContentFiltered),
    ("ratelimit", ErrorClass::RateLimited),
    ("rate_limit", ErrorClass::RateLimited),
    ("rate limit", ErrorClass::RateLimited),
    ("too many requests", ErrorClass::RateLimited),
    ("toomanyrequests", ErrorClass::RateLimited),
    ("resource_exhausted", ErrorClass::RateLimited),
    ("resourceexhausted", ErrorClass::RateLimited),
    ("quota", ErrorClass::RateLimited),
    ("throttl", ErrorClass::RateLimited),
    ("timeout", ErrorClass::Timeout),
    ("timed out", ErrorClass::Timeout),
    ("deadline", ErrorClass::Timeout),
    ("authentication", ErrorClass::Auth),
    ("unauthorized", ErrorClass::Auth),
    ("unauthenticated", ErrorClass::Auth),
    ("permission", ErrorClass::Auth),
    ("forbidden", ErrorClass::Auth),
    ("accessdenied", ErrorClass::Auth),
    ("access denied", ErrorClass::Auth),
    ("api key", ErrorClass::Auth),
    ("apikey", ErrorClass::Auth),
    ("cancel", ErrorClass::Cancelled),
    ("aborterror", ErrorClass::Cancelled),
    ("aborted", ErrorClass::Cancelled),
    ("internalserver", ErrorClass::ServerError),
    ("internal_server", ErrorClass::ServerError),
    ("internal server", ErrorClass::ServerError),
    ("server_error", ErrorClass::ServerError),
    ("servererror", ErrorClass::ServerError),
    ("overloaded", ErrorClass::ServerError),
    ("serviceunavailable", ErrorClass::ServerError),
    ("service unavailable", ErrorClass::ServerError),
    ("service_unavailable", ErrorClass::ServerError),
    ("bad gateway", ErrorClass::ServerError),
    ("badrequest", ErrorClass::InvalidRequest),
    ("bad_request", ErrorClass::InvalidRequest),
    ("bad request", ErrorClass::InvalidRequest),
    ("invalid_request", ErrorClass::InvalidRequest),
    ("invalidrequest", ErrorClass::InvalidRequest),
    ("invalid request", ErrorClass::InvalidRequest),
    ("validation", ErrorClass::InvalidRequest),
    ("notfound", ErrorClass::InvalidRequest),
    ("not_found", ErrorClass::InvalidRequest),
    ("not found", ErrorClass::InvalidRequest),
    ("unprocessable", ErrorClass::InvalidRequest),
];

/// Class of an HTTP status code, for codes >= 400.
pub fn class_of_http_status(code: i64) -> Option<ErrorClass> {
    Some(match code {
        429 => ErrorClass::RateLimited,
        408 | 504 | 524 => ErrorClass::Timeout,
        401 | 403 | 407 => ErrorClass::Auth,
        499 => ErrorClass::Cancelled,
        413 => ErrorClass::ContextLengthExceeded,
        400..=499 => ErrorClass::InvalidRequest,
        500..=599 => ErrorClass::ServerError,
        _ => return None,
    })
}

/// The signals one span gives about failure.
#[derive(Debug, Default)]
pub struct ErrorSignals<'a> {
    /// Span status is ERROR.
    pub status_error: bool,
    /// `error.type`.
    pub error_type: Option<&'a str>,
    /// Texts of exception events (type, then message) and the status message.
    pub texts: Vec<&'a str>,
    /// HTTP status code.
    pub http_status: Option<i64>,
    /// Finish reasons.
    pub finish_reasons: &'a [String],
}

/// Classifies a span. Returns `None` when nothing says the call failed.
pub fn classify(s: &ErrorSignals<'_>) -> Option<ErrorClass> {
    let filtered = s.finish_reasons.iter().any(|r| {
        let r = r.to_ascii_lowercase();
        CONTENT_FILTER_FINISH_REASONS.contains(&r.as_str())
    });
    if filtered {
        return Some(ErrorClass::ContentFiltered);
    }
    let type_status = s.error_type.and_then(|t| t.trim().parse::<i64>().ok());
    let http = s
        .http_status
        .filter(|c| *c >= 400)
        .or(type_status.filter(|c| *c >= 400));
    let failed = s.status_error || s.error_type.is_some() || !s.texts.is_empty() || http.is_some();
    if !failed {
        return None;
    }
    let mut text = String::new();
    for t in s.error_type.iter().chain(s.texts.iter()) {
        text.push_str(&t.to_ascii_lowercase());
        text.push('\n');
    }
    if let Some((_, class)) = TEXT_RULES.iter().find(|(pat, _)| text.contains(pat)) {
        return Some(*class);
    }
    if let Some(class) = http.and_then(class_of_http_status) {
        return Some(class);
    }
    Some(ErrorClass::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(t: &str) -> Option<ErrorClass> {
        classify(&ErrorSignals {
            status_error: true,
            error_type: Some(t),
            ..Default::default()
        })
    }

    #[test]
    fn classifies_sdk_exception_names() {
        assert_eq!(with_type("openai.RateLimitError"), Some(ErrorClass::RateLimited));
        assert_eq!(with_type("anthropic.APITimeoutError"), Some(ErrorClass::Timeout));
        assert_eq!(with_type("AuthenticationError"), Some(ErrorClass::Auth));
        assert_eq!(with_type("InternalServerError"), Some(ErrorClass::ServerError));
        assert_eq!(with_type("BadRequestError"), Some(ErrorClass::InvalidRequest));
        assert_eq!(with_type("asyncio.CancelledError"), Some(ErrorClass::Cancelled));
        assert_eq!(with_type("429"), Some(ErrorClass::RateLimited));
        assert_eq!(with_type("529"), Some(ErrorClass::ServerError));
        assert_eq!(with_type("_OTHER"), Some(ErrorClass::Other));
    }

    #[test]
    fn message_beats_generic_type() {
        let s = ErrorSignals {
            status_error: true,
            error_type: Some("BadRequestError"),
            texts: vec!["This model's maximum context length is 128000 tokens"],
            ..Default::default()
        };
        assert_eq!(classify(&s), Some(ErrorClass::ContextLengthExceeded));
    }

    #[test]
    fn finish_reason_content_filter() {
        let reasons = vec!["content_filter".to_owned()];
        let s = ErrorSignals {
            finish_reasons: &reasons,
            ..Default::default()
        };
        assert_eq!(classify(&s), Some(ErrorClass::ContentFiltered));
    }

    #[test]
    fn ok_call_has_no_class() {
        let reasons = vec!["stop".to_owned()];
        let s = ErrorSignals {
            finish_reasons: &reasons,
            http_status: Some(200),
            ..Default::default()
        };
        assert_eq!(classify(&s), None);
    }
}
