//! The mock as the runner sees it: in-process ([`MockHandle`]) when the runner started it, or
//! over its HTTP control routes (`/_streamcheck/…`) when it runs elsewhere (`--backend URL`,
//! [`Remote`]).

use std::time::Duration;

use super::remote::Remote;
use crate::mock::{MockHandle, RequestRecord};
use crate::pattern::{MockSettings, UpstreamPlan};

/// The largest script content sent to a remote mock: its script body limit (32 MiB by default,
/// `MockConfig::max_script_bytes`) with room for the JSON around the content.
pub(super) const REMOTE_SCRIPT_LIMIT: usize = 30 << 20;

/// A mock the runner can read and script.
pub(crate) enum Mock {
    /// Started by the runner, in this process.
    Embedded(MockHandle),
    /// Running elsewhere, reached over HTTP.
    Remote(Remote),
}

impl Mock {
    /// The settings the mock plans patterns with.
    pub fn settings(&self) -> &MockSettings {
        match self {
            Mock::Embedded(m) => m.settings(),
            Mock::Remote(r) => r.settings(),
        }
    }

    /// The mock's TCP port (to tell upstream sockets from client sockets in a daemon's fds).
    pub fn port(&self) -> u16 {
        match self {
            Mock::Embedded(m) => m.local_addr().port(),
            Mock::Remote(r) => r.port(),
        }
    }

    /// The most content a script may carry (a remote mock limits request bodies).
    pub fn script_limit(&self) -> Option<usize> {
        match self {
            Mock::Embedded(_) => None,
            Mock::Remote(_) => Some(REMOTE_SCRIPT_LIMIT),
        }
    }

    /// Registers a script streaming `pieces` as content chunks, then a final chunk and
    /// `[DONE]`, all written at once; returns the pattern that selects it (`script:ID`).
    pub fn register_content_script(&self, pieces: &[String]) -> Result<String, String> {
        match self {
            Mock::Embedded(m) => {
                let id = m.register_script(UpstreamPlan::content_script(pieces));
                Ok(format!("script:{id}"))
            }
            Mock::Remote(r) => r.register_content_script(pieces),
        }
    }

    /// Registers `plan` as a script (a remote mock gets it as JSON, writes in hex, delays in
    /// whole milliseconds); returns the pattern that selects it (`script:ID`).
    pub fn register_script(&self, plan: &UpstreamPlan) -> Result<String, String> {
        match self {
            Mock::Embedded(m) => Ok(format!("script:{}", m.register_script(plan.clone()))),
            Mock::Remote(r) => r.register_script(plan),
        }
    }

    /// Every logged request that carried `nonce`, oldest first.
    pub fn requests_for(&self, nonce: &str) -> Result<Vec<RequestRecord>, String> {
        match self {
            Mock::Embedded(m) => Ok(m.requests_for(nonce)),
            Mock::Remote(r) => r.requests_for(nonce),
        }
    }

    /// Whether the daemon under test has made any upstream request: any request at all to an
    /// embedded mock (it serves this run alone), a request carrying a nonce of this run (`tag`)
    /// to a remote one. An unreadable remote log counts as a request seen: it proves nothing.
    pub fn saw_daemon_request(&self, tag: &str) -> bool {
        match self {
            Mock::Embedded(m) => m.count_requests(|_| true) > 0 || m.dropped_requests() > 0,
            Mock::Remote(r) => r.all_requests().map_or(true, |records| {
                records
                    .iter()
                    .any(|r| r.nonce.as_deref().is_some_and(|n| n.starts_with(tag)))
            }),
        }
    }

    /// How many requests without any nonce arrived from `from_ns` to `to_ns`
    /// ([`crate::clock::monotonic_ns`]): a daemon that lost a handoff's data and went on with
    /// defaults sends one.
    pub fn requests_without_nonce(&self, from_ns: u64, to_ns: u64) -> Result<usize, String> {
        let lost =
            |r: &RequestRecord| r.nonce.is_none() && (from_ns..=to_ns).contains(&r.arrival_ns);
        match self {
            Mock::Embedded(m) => Ok(m.count_requests(lost)),
            Mock::Remote(r) => Ok(r.all_requests()?.iter().filter(|r| lost(r)).count()),
        }
    }

    /// Waits until a request with `nonce` exists and all such requests have ended, at most
    /// `timeout`, and returns them (possibly still in progress, or none, after the timeout).
    pub fn wait_for_end(
        &self,
        nonce: &str,
        timeout: Duration,
    ) -> Result<Vec<RequestRecord>, String> {
        match self {
            Mock::Embedded(m) => {
                m.wait_for_end(nonce, timeout);
                Ok(m.requests_for(nonce))
            }
            Mock::Remote(r) => r.wait_for_end(nonce, timeout),
        }
    }
}
