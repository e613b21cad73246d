//! Reporters: human, TAP, JSON, JUnit.
