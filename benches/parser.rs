//! SSE parser throughput: streamcheck's parser against eventsource-stream and sse-stream on the
//! same inputs in the same run, with a memchr newline count as the floor no line parser can beat.
//!
//! Inputs:
//! - `chat`: 64 MiB of full OpenAI `chat.completion.chunk` events (PROTOCOL.md §4), 16 KiB feeds;
//! - `simplified`: 16 MiB of `data: {"content":"…"}` events as most daemons relay them, 16 KiB feeds;
//! - `one-byte`: the first 4 MiB of `simplified`, fed one byte at a time;
//! - `long-line`: one 4 MiB data line, 16 KiB feeds.
//!
//! Two floors frame the figures: `memchr-floor` counts LFs with memchr, the least any line
//! parser must do; `copy-floor` also appends every piece to one growing buffer, the least any
//! parser must do on `long-line`, whose data has to be kept until its blank line arrives.
//!
//! Every parser must find the same number of events before it is timed. The async crates are
//! polled with a no-op waker over an always-ready stream of the same slices, so they pay for
//! their parsing, not for an executor.
//!
//! Time is the benchmark thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: the
//! machines this runs on are shared, and time spent descheduled is not the parser's.
//!
//! Run: `cargo bench --bench parser` (a few minutes; eventsource-stream is quadratic on the
//! long line). Criterion prints events/s and bytes/s for each parser and input; a table of all
//! of them, with each parser's ratio to sse-stream, follows.

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::Stream;
use streamcheck::sse::{Event, EventRef, Parser, Visitor};

/// The benchmark answer's words (PROTOCOL.md §4), with some non-ASCII text and JSON escapes
/// mixed in, as real answers have.
const WORDS: &[&str] = &[
    "Hello",
    " world",
    "!",
    " This",
    " is",
    " a",
    " mock",
    " LLM",
    " response",
    " for",
    " benchmarking",
    " streaming",
    " performance",
    ".",
    " The",
    " actual",
    " content",
    " doesn't",
    " café",
    " 日本語",
    " \\u00e9t\\u00e9",
    " 😀",
    "\\n\\n",
    " \\\"quoted\\\"",
];

fn chat_stream(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4096);
    let mut n = 0;
    while out.len() < size {
        for word in WORDS.iter().cycle().skip(n % WORDS.len()).take(18) {
            out.extend_from_slice(
                format!(
                    "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\
                     \"model\":\"mock-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\
                     \"finish_reason\":null}}]}}\n\n"
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(
            b"data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\
              \"model\":\"mock-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
              data: [DONE]\n\n",
        );
        n += 1;
    }
    out
}

fn simplified_stream(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 256);
    for word in WORDS.iter().cycle() {
        if out.len() >= size {
            break;
        }
        out.extend_from_slice(format!("data: {{\"content\":\"{word}\"}}\n\n").as_bytes());
    }
    out
}

fn long_line(size: usize) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.resize(size - 2, b'x');
    out.extend_from_slice(b"\n\n");
    out
}

struct Input {
    name: &'static str,
    bytes: &'static [u8],
    feed: usize,
}

impl Input {
    fn new(name: &'static str, bytes: Vec<u8>, feed: usize) -> Self {
        // Leaked so that the async crates can take `'static` slices: no Bytes refcounting.
        Self {
            name,
            bytes: Vec::leak(bytes),
            feed,
        }
    }

    fn pieces(&self) -> std::slice::Chunks<'static, u8> {
        self.bytes.chunks(self.feed)
    }
}

/// Counts events and their data bytes, checking each event's UTF-8 as an owned event would.
#[derive(Default)]
struct Count {
    events: u64,
    bytes: u64,
    invalid: u64,
}

impl Visitor for Count {
    fn event(&mut self, event: EventRef<'_>) {
        let data = event.data();
        self.events += 1;
        self.bytes += data.len() as u64;
        self.invalid += u64::from(event.invalid_utf8().is_some());
    }
}

fn streamcheck_borrowed(input: &Input) -> u64 {
    let mut parser = Parser::new();
    let mut count = Count::default();
    for piece in input.pieces() {
        parser.feed(piece, &mut count).expect("within limits");
    }
    black_box((count.bytes, count.invalid));
    count.events
}

fn streamcheck_owned(input: &Input) -> u64 {
    let mut parser = Parser::new();
    let mut events: Vec<Event> = Vec::new();
    let mut total = 0;
    for piece in input.pieces() {
        parser.feed(piece, &mut events).expect("within limits");
        total += events.len() as u64;
        black_box(&events);
        events.clear();
    }
    total
}

/// Drains an always-ready stream with a no-op waker.
fn drain<S: Stream<Item = Result<T, E>> + Unpin, T, E: std::fmt::Debug>(mut stream: S) -> u64 {
    let mut cx = Context::from_waker(Waker::noop());
    let mut events = 0;
    loop {
        match Pin::new(&mut stream).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => {
                black_box(item.expect("parses"));
                events += 1;
            }
            Poll::Ready(None) => return events,
            Poll::Pending => unreachable!("the input stream is always ready"),
        }
    }
}

fn sse_stream_crate(input: &Input) -> u64 {
    let chunks = futures_util::stream::iter(input.pieces().map(Ok::<&'static [u8], Infallible>));
    drain(sse_stream::SseByteStream::new(chunks))
}

fn eventsource_stream_crate(input: &Input) -> u64 {
    let chunks = futures_util::stream::iter(input.pieces().map(Ok::<&'static [u8], Infallible>));
    drain(eventsource_stream::EventStream::new(chunks))
}

/// What any parser pays that must keep every byte (as all must on `long-line`): find the line
/// ends in each piece and append the piece to one growing buffer, new for each run.
fn copy_floor(input: &Input) -> u64 {
    let mut buffer = Vec::new();
    let mut ends = 0;
    for piece in input.pieces() {
        ends += memchr::memchr2_iter(b'\n', b'\r', piece).count() as u64;
        buffer.extend_from_slice(piece);
    }
    black_box(&buffer);
    ends / 2
}

fn memchr_floor(input: &Input) -> u64 {
    input
        .pieces()
        .map(|piece| memchr::memchr_iter(b'\n', piece).count() as u64)
        .sum::<u64>()
        / 2
}

/// The calling thread's CPU time.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, ns: &u64) -> f64 {
        *ns as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

/// Formats nanoseconds of CPU time, and throughputs per CPU second.
struct NsFormatter;

/// Scales `values` (ns per iteration) to `amount` per second in the unit `typical` calls for.
fn per_second(
    amount: f64,
    typical: f64,
    values: &mut [f64],
    units: [(f64, &'static str); 4],
) -> &'static str {
    let rate = amount * 1e9 / typical;
    let (scale, unit) = units
        .iter()
        .rev()
        .find(|(scale, _)| rate >= *scale)
        .copied()
        .unwrap_or(units[0]);
    for value in values {
        *value = amount * 1e9 / *value / scale;
    }
    unit
}

const BINARY: [(f64, &str); 4] = [
    (1.0, "  B/s"),
    (1024.0, "KiB/s"),
    (1048576.0, "MiB/s"),
    (1073741824.0, "GiB/s"),
];
const DECIMAL: [(f64, &str); 4] = [(1.0, "  B/s"), (1e3, "KB/s"), (1e6, "MB/s"), (1e9, "GB/s")];
const ELEMENTS: [(f64, &str); 4] = [
    (1.0, " elem/s"),
    (1e3, "Kelem/s"),
    (1e6, "Melem/s"),
    (1e9, "Gelem/s"),
];
const BITS: [(f64, &str); 4] = [(1.0, "  b/s"), (1e3, "Kb/s"), (1e6, "Mb/s"), (1e9, "Gb/s")];

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        match *throughput {
            Throughput::Bytes(n) => per_second(n as f64, typical, values, BINARY),
            Throughput::BytesDecimal(n) => per_second(n as f64, typical, values, DECIMAL),
            Throughput::Bits(n) => per_second(n as f64, typical, values, BITS),
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                per_second(n as f64, typical, values, ELEMENTS)
            }
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const PARSERS: [&str; 6] = [
    "streamcheck",
    "streamcheck-owned",
    "sse-stream",
    "eventsource-stream",
    "memchr-floor",
    "copy-floor",
];

/// What one input measures: its bytes and events, for the summary table.
struct Sizes {
    name: &'static str,
    bytes: u64,
    events: u64,
}

/// Prints, from criterion's estimates of this run, GiB/s and events/s of every parser on every
/// input and the ratio to sse-stream.
fn summary(sizes: &[Sizes]) {
    let root = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
        });
    let mean_ns = |input: &str, parser: &str| -> Option<f64> {
        let path = root.join(input).join(parser).join("new/estimates.json");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        json["mean"]["point_estimate"].as_f64()
    };
    println!("\n| input | parser | GiB/s | M events/s | × sse-stream |\n|---|---|---:|---:|---:|");
    for size in sizes {
        let baseline = mean_ns(size.name, "sse-stream");
        for parser in PARSERS {
            let Some(ns) = mean_ns(size.name, parser) else {
                continue;
            };
            let gib = size.bytes as f64 / ns * 1e9 / f64::from(1u32 << 30);
            let mev = size.events as f64 / ns * 1e3;
            let ratio = baseline.map_or(String::from("–"), |b| format!("{:.2}", b / ns));
            println!(
                "| {} | {parser} | {gib:.3} | {mev:.3} | {ratio} |",
                size.name
            );
        }
    }
}

fn parsers(c: &mut Criterion<ThreadCpuTime>) {
    let simplified = simplified_stream(16 << 20);
    let inputs = [
        Input::new("chat", chat_stream(64 << 20), 16 << 10),
        Input::new("one-byte", simplified[..4 << 20].to_vec(), 1),
        Input::new("simplified", simplified, 16 << 10),
        Input::new("long-line", long_line(4 << 20), 16 << 10),
    ];
    type Run = fn(&Input) -> u64;
    let runs: [Run; 6] = [
        streamcheck_borrowed,
        streamcheck_owned,
        sse_stream_crate,
        eventsource_stream_crate,
        memchr_floor,
        copy_floor,
    ];
    let runs: Vec<(&str, Run)> = PARSERS.into_iter().zip(runs).collect();
    let mut sizes = Vec::new();
    for input in &inputs {
        let events = streamcheck_borrowed(input);
        for (name, run) in &runs[..4] {
            assert_eq!(run(input), events, "{name} on {}", input.name);
        }
        let mut group = c.benchmark_group(input.name);
        let bytes = input.bytes.len() as u64;
        group.throughput(Throughput::ElementsAndBytes {
            elements: events,
            bytes,
        });
        for (name, run) in &runs {
            group.bench_function(*name, |b| b.iter(|| run(input)));
        }
        group.finish();
        sizes.push(Sizes {
            name: input.name,
            bytes,
            events,
        });
    }
    summary(&sizes);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = parsers
}
criterion_main!(benches);
