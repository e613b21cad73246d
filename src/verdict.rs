//! Assertions and Autobahn-style verdicts.
