//! Fault modes: each one realistic bug, injected at the one place in the daemon where that bug
//! would live (search for `Fault::` to find them). The scenario suite must catch every one.
//!
//! Two kinds: bugs ([`Fault::bugs`]), which the mutation table proves the suite catches, and
//! resource-abuse modes ([`Fault::is_resource_abuse`]): a hostile daemon that would cost the
//! tester its time or memory (endless output, silence, a handoff never taken, death). Those are
//! run by tests that hold the tester's own bounds and check that it names them.

/// One realistic defect the reference daemon can be started with (`--fault NAME`).
///
/// The doc line of each variant is its description in `--help` and `--fault list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Fault {
    /// Does not copy the handoff's test_pattern into the upstream X-Test-Pattern header.
    IgnoreTestPattern,
    /// Sends `data: [DONE]` after an upstream that ended without finish_reason or `[DONE]`.
    DoneAfterAbort,
    /// Decodes each upstream read on its own with lossy UTF-8: U+FFFD wherever a character is split.
    LossyUtf8,
    /// Receives the handoff into a 4 KiB buffer, ignores MSG_TRUNC and falls back to defaults.
    #[value(name = "truncate-handoff-4k")]
    TruncateHandoff4k,
    /// Sends 200 headers, then closes without an error event when the upstream fails.
    HeadersOnlyOnUpstreamError,
    /// Writes nothing and leaves the client connection open when the upstream fails.
    HangOnUpstreamError,
    /// Its upstream line reader fails on lines longer than 64 KiB.
    #[value(name = "line-limit-64k")]
    LineLimit64k,
    /// Keeps reading the upstream to its end after the client has gone.
    NoUpstreamCancel,
    /// Holds one global lock across client writes: one slow reader stalls every stream.
    HeadOfLineBlocking,
    /// Keeps one shared "current client": concurrent streams all write to the latest handoff's client.
    Crosstalk,
    /// Buffers the whole answer and sends nothing until the upstream has ended.
    BufferWholeResponse,
    /// Answers with Content-Type: text/plain instead of text/event-stream.
    WrongContentType,
    /// Shuts down writing but never closes the client fd: one leaked fd per connection.
    LeakFd,
    /// Never closes the connection after `data: [DONE]` (waits for the client to close).
    NoClose,
    /// Listens as SOCK_STREAM instead of SOCK_SEQPACKET.
    StreamSocket,
    /// Finds content by exact text: `data: ` with a space, LF line ends, compact `{"content":"`.
    NaiveUpstreamParser,
    /// Copies JSON string escapes from the upstream instead of decoding them (`\u00e9` stays literal).
    EscapePassthrough,
    /// Cuts each content piece to 4095 bytes (a 4096-byte C buffer with its NUL) without a word.
    #[value(name = "cut-4k")]
    Cut4k,
    /// Relays an upstream error status as a normal, empty stream ending in `data: [DONE]`.
    ErrorAsDone,
    /// Resource abuse: answers with an endless valid stream of content events, never `[DONE]`.
    EndlessStream,
    /// Resource abuse: answers with one `data:` line of 1 GiB.
    GiantLine,
    /// Resource abuse: answers with 2,000,000 tiny content events, then `[DONE]`.
    EventFlood,
    /// Resource abuse: answers with a 10 MiB response head.
    HugeHead,
    /// Resource abuse: reads the handoff, then never writes, never closes, never calls the upstream.
    Silent,
    /// Resource abuse: listens but never accepts a handoff connection.
    NeverAccept,
    /// Resource abuse: accepts each handoff connection but never reads its message.
    NeverReadHandoff,
    /// Resource abuse: serves 5 handoffs, then exits with status 1 at the 6th, socket file left.
    ExitAfterHandoffs,
}

/// Handoffs the `exit-after-handoffs` mode serves before it exits.
pub const EXIT_AFTER_HANDOFFS: u64 = 5;

impl Fault {
    /// The name accepted by `--fault`.
    pub fn name(self) -> String {
        self.possible_value().get_name().to_owned()
    }

    /// The one-line description shown by `--fault list`.
    pub fn description(self) -> String {
        self.possible_value()
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default()
    }

    /// Every fault mode, in declaration order.
    pub fn all() -> &'static [Fault] {
        <Fault as clap::ValueEnum>::value_variants()
    }

    /// Whether this mode abuses the tester's resources (time, memory) rather than being a bug
    /// a scenario catches: such modes are held by their own tests, not by the mutation table.
    pub fn is_resource_abuse(self) -> bool {
        matches!(
            self,
            Fault::EndlessStream
                | Fault::GiantLine
                | Fault::EventFlood
                | Fault::HugeHead
                | Fault::Silent
                | Fault::NeverAccept
                | Fault::NeverReadHandoff
                | Fault::ExitAfterHandoffs
        )
    }

    /// The bug modes, in declaration order: every mode that is not resource abuse.
    pub fn bugs() -> impl Iterator<Item = Fault> {
        Fault::all()
            .iter()
            .copied()
            .filter(|f| !f.is_resource_abuse())
    }

    fn possible_value(self) -> clap::builder::PossibleValue {
        // Every variant is listed (none is `#[value(skip)]`), so this is always `Some`.
        clap::ValueEnum::to_possible_value(&self)
            .unwrap_or_else(|| clap::builder::PossibleValue::new(""))
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// True when `fault` is the mode `mode`: the guard at each bug's site.
pub(crate) fn is(fault: Option<Fault>, mode: Fault) -> bool {
    fault == Some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_the_issue_lists() {
        let names: Vec<String> = Fault::all().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "ignore-test-pattern",
                "done-after-abort",
                "lossy-utf8",
                "truncate-handoff-4k",
                "headers-only-on-upstream-error",
                "hang-on-upstream-error",
                "line-limit-64k",
                "no-upstream-cancel",
                "head-of-line-blocking",
                "crosstalk",
                "buffer-whole-response",
                "wrong-content-type",
                "leak-fd",
                "no-close",
                "stream-socket",
                "naive-upstream-parser",
                "escape-passthrough",
                "cut-4k",
                "error-as-done",
                "endless-stream",
                "giant-line",
                "event-flood",
                "huge-head",
                "silent",
                "never-accept",
                "never-read-handoff",
                "exit-after-handoffs",
            ]
        );
    }

    #[test]
    fn bugs_are_every_mode_but_the_resource_abuse_ones() {
        assert_eq!(Fault::bugs().count(), 19, "the mutation table's 19 bugs");
        assert!(Fault::bugs().all(|f| !f.is_resource_abuse()));
        assert!(Fault::NeverAccept.is_resource_abuse());
        assert!(!Fault::Cut4k.is_resource_abuse());
    }

    #[test]
    fn every_mode_has_a_one_line_description() {
        for fault in Fault::all() {
            let d = fault.description();
            assert!(!d.is_empty() && !d.contains('\n'), "{fault}: {d:?}");
        }
    }
}
