//! Proptest strategies for upstream streams and client behaviours.

// HTTP/1 responses
//
// Strategies, an encoder with its expected parse, and the incremental runner for the `http1`
// parser, shared by tests/http1_props.rs and the `http_response` fuzz target.
pub mod http1;
