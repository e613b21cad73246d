//! Proptest strategies for upstream streams and client behaviours.
