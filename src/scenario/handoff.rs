//! handoff: what arrives on the daemon's socket. Apache sends the data exactly, or a single NUL
//! byte when there is none, in one SEQPACKET message of up to ~208 KiB; the daemon must either
//! use all of it or refuse it with an HTTP error, never silently fall back to defaults.

use super::{Category, Check, Data, Drive, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "7.1",
        name: "empty_data",
        category: Category::Handoff,
        description: "A handoff without data (the single NUL byte Apache sends) gets a clean HTTP \
                      error or a complete default answer, never silence",
        pattern: "default",
        data: Data::Empty,
        checks: &[Check::ProcessedOrRejected],
        ..Scenario::BASE
    },
    Scenario {
        id: "7.2",
        name: "invalid_json",
        category: Category::Handoff,
        description: "Data that is not JSON gets a clean HTTP error (or is used as it stands), \
                      never silence or a stream that ignored it",
        pattern: "finish:stop",
        data: Data::InvalidJson,
        checks: &[Check::ProcessedOrRejected],
        ..Scenario::BASE
    },
    Scenario {
        id: "7.3",
        name: "payload_5k",
        category: Category::Handoff,
        description: "5 KiB of data (over a 4 KiB receive buffer) is used whole or refused with an \
                      HTTP error",
        pattern: "finish:stop",
        data: Data::Padded { bytes: 5 * 1024 },
        checks: &[Check::ProcessedOrRejected],
        ..Scenario::BASE
    },
    Scenario {
        id: "7.4",
        name: "payload_70k",
        category: Category::Handoff,
        description: "70 KiB of data (over a 64 KiB receive buffer) is used whole or refused with \
                      an HTTP error",
        pattern: "finish:stop",
        data: Data::Padded { bytes: 70 * 1024 },
        checks: &[Check::ProcessedOrRejected],
        ..Scenario::BASE
    },
    Scenario {
        id: "7.5",
        name: "payload_150k",
        category: Category::Handoff,
        description: "150 KiB of data (over a 128 KiB receive buffer, under the SEQPACKET limit) \
                      is used whole or refused with an HTTP error",
        pattern: "finish:stop",
        data: Data::Padded { bytes: 150 * 1024 },
        checks: &[Check::ProcessedOrRejected],
        ..Scenario::BASE
    },
    Scenario {
        id: "7.6",
        name: "prompt_escapes",
        category: Category::Handoff,
        description: "A prompt written with JSON escapes (\\u00e9, \\n, \\\", \\\\, a surrogate \
                      pair) reaches the upstream decoded, exactly",
        pattern: "finish:stop",
        data: Data::EscapedPrompt,
        ..Scenario::BASE
    },
    Scenario {
        id: "7.7",
        name: "socket_type",
        category: Category::Handoff,
        description: "The daemon accepts a SOCK_SEQPACKET connection, as Apache's \
                      mod_socket_handoff makes",
        pattern: "finish:stop",
        drive: Drive::SocketType,
        ..Scenario::BASE
    },
];
