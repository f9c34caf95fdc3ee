//! The error body every fedge service answers with: `{"error": "<reason>"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A `status` response whose body is `{"error": message}` (`application/json`).
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let mut body = Vec::with_capacity(message.len() + 16);
    body.extend_from_slice(b"{\"error\":");
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, message);
    body.push(b'}');
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_json_with_the_message_escaped() {
        let resp = json_error(StatusCode::BAD_REQUEST, "bad \"x\"\n");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "bad \"x\"\n");
    }
}
