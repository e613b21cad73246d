//! The reference daemon and its fault modes.
