//! Incremental text/event-stream parser following the WHATWG HTML rules.
