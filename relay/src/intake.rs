//! What comes in from a caller, who may be anyone: a body read within its size limit and its
//! deadline, and fields cut short before they reach a log line or an answer.

use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::LengthLimitError;

use salesmanago_dynamics::core::salesmanago::relay::Refusal;

/// The longest a caller's field (an `Origin`, say) gets in a log line.
pub(crate) const LOGGED: usize = 100;

/// The body of a request with `headers`, at most `limit` bytes, all of it within `within`:
/// [`Refusal::TooLarge`] past the limit (at once when its `Content-Length` says so),
/// [`Refusal::Body`] when it is malformed, cut off or too slow.
pub(crate) async fn body(headers: &HeaderMap, body: Body, limit: usize, within: Duration) -> Result<Bytes, Refusal> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge);
    }
    match tokio::time::timeout(within, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(cause) = source {
                if cause.is::<LengthLimitError>() {
                    return Err(Refusal::TooLarge);
                }
                source = cause.source();
            }
            Err(Refusal::Body)
        }
        Err(_) => Err(Refusal::Body),
    }
}

/// `text` cut to `most` characters, marked with `…` when cut.
pub(crate) fn cut(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_cut_on_a_character() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "abc…");
        assert_eq!(cut("żółw", 2), "żó…");
    }
}
