//! The edge of a gRPC stack: typed errors of the layers become
//! `tonic::Status`es with the matching code, so a gRPC client sees
//! `INVALID_ARGUMENT` for a request without a key rather than a protocol
//! error.

use foresight_core::BoxError;
use http::StatusCode;
use tonic::{Code, Status};

/// The gRPC code for an HTTP status of the layers' errors.
pub fn code_for(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::Aborted,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Code::Unavailable
        }
        _ => Code::Internal,
    }
}

/// The `Status` for an error of the stack: a known error of any enabled
/// layer (anywhere in the source chain) gets its code and message; any other
/// error is left to tonic (`Status::from_error` finds a `Status` or a
/// transport error in the chain).
pub fn status(error: BoxError) -> Status {
    match crate::edge().lookup(&error) {
        Some(response) => Status::new(code_for(response.status), response.message),
        None => Status::from_error(error),
    }
}
