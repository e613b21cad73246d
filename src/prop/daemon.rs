//! Property cases against a daemon: generated upstream streams and client behaviours, run
//! through the daemon, checked against invariants, the failures shrunk to a minimal case.
//!
//! A [`Case`] ([`strategy::case`] generates them) holds content chunks biased to what relays
//! break (every UTF-8 width, combining marks, ZWJ sequences, U+2028/U+2029, NUL and control
//! characters, every JSON escape, surrogate pairs), the upstream's framing, the cuts that make
//! its writes (inside characters, inside `data:`, between CR and LF, inside escapes), delays,
//! an ending (complete, truncated anywhere, reset, error status) and a client (reads all,
//! leaves after N bytes or events, pauses). [`Case::build`] turns it into the mock's script and
//! the outcome a correct daemon produces; [`judge`] checks what the daemon did.
//!
//! A client that leaves gets a *cancel tail*: the upstream goes on with [`TAIL_EVENTS`] content
//! events [`TAIL_GAP`] apart after the generated chunks, so it is still streaming when the
//! client leaves and a daemon that does not cancel it shows in the mock's log.
//!
//! [`run`] is `streamcheck prop`: persisted cases first ([`regressions`]), then cases from a
//! seeded proptest [`proptest::test_runner::TestRunner`], `jobs` at a time on one ring; the
//! first failure (lowest case index, so the result does not depend on timing) is shrunk with
//! its value tree, replayed to see how reliably it fails, reported ([`render`]) and appended to
//! the regression file. A [`Session`] keeps one daemon and mock for cases run one at a time
//! (the `daemon` fuzz target); with the `fuzzing` feature, [`Case`] implements
//! `arbitrary::Arbitrary`, so fuzz inputs decode into the cases `prop` generates.

#[cfg(feature = "fuzzing")]
mod arbitrary_case;
mod batch;
mod build;
mod case;
mod drive;
mod judge;
pub mod regressions;
pub mod render;
mod runner;
mod session;
mod shrink;
pub mod strategy;
mod target;
#[cfg(test)]
mod tests;

use crate::handoff::HandoffError;

pub use batch::CaseResult;
pub use build::{
    Built, Expected, TAIL_EVENTS, TAIL_GAP, TAIL_TEXT, UpstreamEnd, inner_offsets, json_string,
};
pub use case::{Atom, Case, Chunk, Client, Cut, CutAt, Ending, Eol, Escape, Framing, Split};
pub use drive::{Limits, Observed};
pub use judge::judge;
pub use runner::{DEFAULT_REGRESSIONS, Failure, Origin, PropConfig, PropReport, run, seed_bytes};
pub use session::Session;
pub use shrink::{ShrinkProgress, ShrinkStats};

/// Why a `prop` run could not be carried out (exit status 2). Each message names the cause
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PropError {
    /// A bad option or combination of options.
    #[error("{0}")]
    Usage(String),
    /// The mock could not be started, reached, scripted or read.
    #[error("{0}")]
    Mock(String),
    /// The daemon given by `--daemon-cmd` did not start.
    #[error("{0}")]
    DaemonStart(String),
    /// The daemon could not be reached, or io_uring is unavailable.
    #[error("{0}")]
    Handoff(HandoffError),
    /// The regression file could not be read or written.
    #[error("{0}")]
    Regressions(String),
    /// Something about the machine (a working directory).
    #[error("{0}")]
    Environment(String),
}
