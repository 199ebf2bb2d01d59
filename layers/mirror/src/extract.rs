//! The axum extractor.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use foresight_core::error::ErrorResponse;
use http::request::Parts;

use crate::{Session, SessionError};

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionError::MissingLayer)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        foresight_core::edge::into_response(ErrorResponse::from_error(&self)).into_response()
    }
}
