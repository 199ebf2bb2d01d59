//! Test support.
#![forbid(unsafe_code)]
