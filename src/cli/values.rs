//! Argument values shared by several commands.

/// `--pair`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PairArg {
    /// A connected loopback TCP pair, as Apache hands off.
    Tcp,
    /// An AF_UNIX socketpair.
    Unix,
}

/// `--socket-type`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SocketTypeArg {
    /// SOCK_SEQPACKET, as Apache connects.
    Seqpacket,
    /// SOCK_STREAM, for daemons that listen as a stream socket.
    Stream,
}

impl From<PairArg> for streamcheck::handoff::PairKind {
    fn from(arg: PairArg) -> Self {
        match arg {
            PairArg::Tcp => Self::Tcp,
            PairArg::Unix => Self::Unix,
        }
    }
}

impl From<SocketTypeArg> for streamcheck::handoff::SocketType {
    fn from(arg: SocketTypeArg) -> Self {
        match arg {
            SocketTypeArg::Seqpacket => Self::SeqPacket,
            SocketTypeArg::Stream => Self::Stream,
        }
    }
}

/// `--strict`.
pub fn strictness(strict: bool) -> streamcheck::verdict::Strictness {
    use streamcheck::verdict::Strictness;
    if strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    }
}

/// A flag given in seconds, as a positive duration.
pub fn seconds(name: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--{name} {secs}: give a positive number of seconds"))
}

/// A duration flag such as `30s` or `500ms`.
pub fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    streamcheck::stress::parse_duration(text)
}
