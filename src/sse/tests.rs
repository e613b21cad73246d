//! Unit tests for the SSE parser: one behaviour each.
