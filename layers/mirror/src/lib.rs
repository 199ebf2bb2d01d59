//! Session mirror layer.
#![forbid(unsafe_code)]
