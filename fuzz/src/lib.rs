//! What the `daemon` fuzz target needs besides the target itself: the daemon it fuzzes, kept for
//! the whole process ([`daemon`]), and the feedback that makes libFuzzer see what the daemon did
//! ([`outcome`]).

pub mod daemon;
pub mod outcome;
