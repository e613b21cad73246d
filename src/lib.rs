//! streamcheck tests streaming daemons: programs that take over a browser's connection from
//! Apache by SCM_RIGHTS socket handoff, call an LLM API, and relay its streamed answer as
//! Server-Sent Events.
//!
//! Every check follows one flow, and each step is one module:
//!
//! ```text
//! handoff ─► ring ─► transcript ─► http1 ─► sse ─► interpretation ─► verdict ─► report
//!                         ▲
//! mock (upstream) ── request log
//! ```
//!
//! - [`handoff`] builds what Apache sends: the data message and the client socket.
//! - [`ring`] drives many handoffs on one io_uring loop and records every byte with a
//!   CLOCK_MONOTONIC timestamp.
//! - [`http1`] and [`sse`] are push parsers over `&[u8]` for the daemon's response.
//! - [`transcript`] turns one recorded stream into what it means: content, `[DONE]`, timings.
//! - [`pattern`] defines the upstream streams (`patterns/*.json`) and what a correct daemon
//!   makes of them; [`mock`] serves them, and [`scenario`] and [`verdict`] judge the result.
//! - [`report`] formats verdicts; [`refdaemon`] is a correct daemon with fault modes;
//!   [`prop`] and [`stress`] generate cases and load.
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP end every command with its partial report.
//!
//! Unsafe code lives only in [`ring`] and [`handoff`], where io_uring and SCM_RIGHTS need it.

mod any_certificate;
pub mod capacity;
pub mod clock;
pub mod handoff;
mod hex;
pub mod http1;
pub mod mock;
pub mod pattern;
pub mod prop;
pub mod refdaemon;
pub mod report;
pub mod ring;
pub mod scenario;
pub mod signals;
pub mod sse;
pub mod stress;
pub mod transcript;
pub mod units;
pub mod verdict;
