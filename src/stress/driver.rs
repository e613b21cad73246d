//! The run loop: one [`Ring`] on this thread starts every connection on schedule, feeds each
//! read to its connection's checker from the completion callback (no channel, no copy, no
//! thread per connection), judges each stream when it ends, and publishes the streams open and
//! the events received for the sampler thread ([`super::timeline`]), which reads the daemon's
//! fds and RSS every 100 ms.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::death::DeathWatch;
use super::integrity::{Ending, Example, Integrity, judge};
use super::latency::Latencies;
use super::plan::{LoadModel, Role, Roles, duration_ns};
use super::resources::{self, DaemonResources};
use super::setup::{Kind, Mock, Prepared};
use super::stream::{Arrivals, Ctx, StreamCheck, StreamLimits};
use super::timeline::{Gauges, Sampler, Timeline};
use super::{LimitHit, LimitKind, StressConfig, StressError};
use crate::clock::monotonic_ns;
use crate::handoff::{HandoffError, HandoffFate, PairSpread};
use crate::ring::{ConnId, EndReason, HandoffSpec, Ring, RingConfig, RingEvent, RingStats};
use crate::verdict::DaemonDeath;

/// How often the client's RSS is sampled, the mock's log drained and the progress bar redrawn.
const TICK_NS: u64 = 100_000_000;

/// Handoffs started but not yet completed, at most (3 fds each while in flight).
pub(super) const MAX_HANDOFFS_IN_FLIGHT: usize = 1024;

/// Streams started between two turns of the ring, at most. A handoff is made at once (about
/// 30 µs of system calls), so a loop catching up on its schedule still reaps reads every couple
/// of milliseconds, and does not pour thousands of connects into the daemon's accept backlog
/// in one burst.
const MAX_STARTS_PER_TURN: usize = 64;

/// The ring's [`RingConfig::batch_window`]: a read that arrives while the loop sleeps is
/// stamped at most this late, and the loop wakes once per batch rather than once per read.
const BATCH_WINDOW: Duration = Duration::from_micros(100);

/// One open connection.
struct Conn {
    id: ConnId,
    index: u64,
    nonce: String,
    /// Where its latencies count from: the scheduled start (open loop) or the actual one.
    origin_ns: u64,
    role: Role,
    /// Its latencies are recorded: not a slow reader, and started after the warm-up.
    measured: bool,
    sent_ns: Option<u64>,
    /// The client has closed it, or is about to.
    closing: bool,
    /// Its deadline passed (the ring then closes it for us).
    timed_out: bool,
    check: StreamCheck,
    arrivals: Option<Arrivals>,
}

/// What the loop found, for the report (see [`super::report`] for each figure's meaning).
pub struct RunResult {
    pub integrity: Integrity,
    pub latencies: Latencies,
    pub started: u64,
    pub events: u64,
    pub bytes: u64,
    pub peak_open: u64,
    pub wall_ns: u64,
    pub ramp_actual_ns: Option<u64>,
    pub interrupted: bool,
    /// The client limit that stopped the run.
    pub stopped_by: Option<LimitHit>,
    /// When the daemon's accept backlog was first full.
    pub backlog: Option<LimitHit>,
    pub backlog_full: u64,
    pub daemon: Option<DaemonResources>,
    pub thread_cpu_ns: u64,
    pub process_cpu_ns: u64,
    /// The process's user and system CPU during the run.
    pub process_user_ns: u64,
    pub process_sys_ns: u64,
    /// How busy the loop thread was, window by window.
    pub loop_busy: LoopBusy,
    pub rss_before: u64,
    pub rss_per_open: Option<f64>,
    pub ring: RingStats,
    /// The daemon died during the run.
    pub daemon_death: Option<DaemonDeath>,
    /// Streams, events and the daemon's resources through the run.
    pub timeline: Timeline,
}

struct State<'p> {
    prep: &'p mut Prepared,
    conns: Vec<Option<Conn>>,
    open: usize,
    integrity: Integrity,
    lat: Latencies,
    events: u64,
    bytes: u64,
    interrupted: bool,
    backlog_full: u64,
    /// A client limit (fds, ports) was reached: start nothing more.
    stopped_by: Option<LimitHit>,
    backlog: Option<LimitHit>,
    /// Times at which closed-loop slots freed up, oldest first.
    freed: VecDeque<u64>,
    closed_loop: bool,
    /// `(deadline, conn, index)` of normal streams and of slow readers: every stream of one
    /// kind has the same timeout, so each queue is in deadline order. The ring gets no
    /// deadlines (removing thousands of kernel timeouts costs more than this).
    deadlines: [VecDeque<(u64, ConnId, u64)>; 2],
    /// The daemon's liveness; ends a death can cause wait on it.
    watch: DeathWatch,
    /// When the warm-up ends: streams started from then on are measured.
    measure_after_ns: u64,
    /// The first measured stream's index (indices grow with start time).
    measure_from: Option<u64>,
}

/// Runs the load on this thread, the TCP pairs spread over `pairs`.
pub fn run(
    config: &StressConfig,
    prep: &mut Prepared,
    pairs: PairSpread,
    stop: &AtomicBool,
) -> Result<RunResult, StressError> {
    let ring_config = RingConfig {
        pairs,
        batch_window: BATCH_WINDOW,
        ..RingConfig::default()
    };
    let mut ring = Ring::new(ring_config).map_err(|e| StressError::Environment(e.to_string()))?;
    let socket: Arc<Path> = Arc::from(prep.socket.as_path());
    let roles = Roles::new(
        config.slow_readers,
        config.abort_rate,
        prep.events_per_stream,
    );
    let model = config.load;
    let planned = config.planned_connections();
    let bar = progress_bar(config.progress, planned);

    let mut daemon = prep.pid.map(DaemonResources::start);
    let watch = DeathWatch::new(prep.pid.filter(|_| prep.daemon.is_none()));
    let rss_before = resources::own_rss_bytes();
    let (cpu0, thread0) = (resources::process_cpu_ns(), resources::thread_cpu_ns());
    let (user0, sys0) = resources::process_user_sys_ns();
    let t0 = monotonic_ns();
    let gauges = Arc::new(Gauges::default());
    let sampler = Sampler::start(Arc::clone(&gauges), daemon.as_ref().map(|d| d.pid), t0);
    let mut loop_busy = LoopBusy::new(t0, thread0);
    let stop_at = config.duration.map(|d| t0.saturating_add(duration_ns(d)));
    let mut st = State {
        prep,
        conns: Vec::new(),
        open: 0,
        integrity: Integrity::default(),
        lat: Latencies::default(),
        events: 0,
        bytes: 0,
        interrupted: false,
        backlog_full: 0,
        stopped_by: None,
        backlog: None,
        freed: VecDeque::new(),
        closed_loop: !model.is_open(),
        deadlines: [VecDeque::new(), VecDeque::new()],
        watch,
        measure_after_ns: t0.saturating_add(duration_ns(config.warmup)),
        measure_from: None,
    };
    let (mut next, mut peak_open, mut ramp_used) = (0u64, 0usize, 0u64);
    // When the closed loop's ramp started its last stream.
    let mut ramp_done_ns = None;
    let (mut next_tick, mut best_rss) = (t0, (0usize, 0u64));
    let mut starting = true;
    loop {
        let now = monotonic_ns();
        if stop.load(Ordering::Relaxed) && !st.interrupted {
            st.interrupted = true;
            starting = false;
            for conn in st.conns.iter_mut().flatten() {
                conn.closing = true;
                ring.close(conn.id);
            }
        }
        if starting
            && (planned.is_some_and(|n| next >= n)
                || stop_at.is_some_and(|s| now >= s)
                || st.stopped_by.is_some())
        {
            starting = false;
        }
        // Start everything due by now.
        let mut wait_ns = TICK_NS;
        let mut started_now = 0;
        while starting && st.open < model.max_open() {
            let (scheduled, ramp_slot) = match model {
                LoadModel::Open { .. } => (t0.saturating_add(offset(model, next)), false),
                // A closed loop fills the ramp's slots as they come due and each slot freed by
                // an ending stream, earliest first.
                LoadModel::Closed { concurrency, .. } => {
                    let ramp = (ramp_used < concurrency as u64)
                        .then(|| t0.saturating_add(offset(model, ramp_used)));
                    // A due ramp slot goes first: the ramp is what the run promised. A freed
                    // slot is refilled only with connections the ramp does not still need.
                    let unramped = concurrency as u64 - ramp_used.min(concurrency as u64);
                    let spare = planned.is_none_or(|n| next + unramped < n);
                    match (ramp, st.freed.front()) {
                        (Some(r), _) if r <= now => (r, true),
                        (_, Some(&f)) if spare => (f, false),
                        (Some(r), _) => (r, true),
                        (None, _) => break,
                    }
                }
            };
            if scheduled > now {
                wait_ns = wait_ns.min(scheduled - now);
                break;
            }
            if started_now == MAX_STARTS_PER_TURN {
                wait_ns = 0;
                break;
            }
            if ring.handoffs_in_progress() >= MAX_HANDOFFS_IN_FLIGHT {
                // A stream holds 3 fds until its handoff completes: starting thousands at the
                // same instant would hit the fd limit long before the streams themselves do.
                // The wait shows up as schedule lag, measured from the scheduled start.
                wait_ns = wait_ns.min(1_000_000);
                break;
            }
            if ramp_slot {
                ramp_used += 1;
                if let LoadModel::Closed { concurrency, .. } = model
                    && ramp_used == planned.unwrap_or(u64::MAX).min(concurrency as u64)
                {
                    ramp_done_ns = Some(monotonic_ns().saturating_sub(t0));
                }
            } else if !model.is_open() {
                st.freed.pop_front();
            }
            let role = roles.role(next);
            if let Err(limit) = st.start(&mut ring, &socket, config, next, scheduled, role, model) {
                st.stopped_by.get_or_insert(limit);
                starting = false;
                break;
            }
            next += 1;
            started_now += 1;
            if planned.is_some_and(|n| next >= n) {
                starting = false;
            }
        }
        peak_open = peak_open.max(st.open);
        if !starting && st.open == 0 {
            break;
        }
        if let Some(next_deadline) = st.expire(&mut ring, now) {
            wait_ns = wait_ns.min(next_deadline.saturating_sub(now).max(1));
        }
        let step = ring.run_once(Some(Duration::from_nanos(wait_ns)), |ev, cmds| {
            st.on_event(ev, cmds)
        });
        if let Err(e) = step {
            return Err(StressError::Environment(format!(
                "the io_uring loop failed: {e}"
            )));
        }
        gauges.publish(st.open, st.events);
        let now = monotonic_ns();
        if now >= next_tick {
            next_tick = now + TICK_NS;
            loop_busy.sample(now, resources::thread_cpu_ns());
            if st.open > best_rss.0 {
                best_rss = (st.open, resources::own_rss_bytes());
            }
            st.drain_mock();
            if st.watch.check(st.prep.daemon.as_mut(), next) {
                // Nothing more is started against a dead daemon.
                starting = false;
            }
            st.watch.settle(&mut st.integrity, now, false);
            if let Some(bar) = &bar {
                bar.set_position(st.integrity.total());
                bar.set_message(format!(
                    "{} open, {} failed",
                    st.open,
                    st.integrity.failed()
                ));
            }
        }
    }
    let wall_ns = monotonic_ns() - t0;
    gauges.publish(st.open, st.events);
    let (daemon_peak, daemon_error) = sampler.run_ended();
    if let Some(d) = daemon.as_mut() {
        d.observed(daemon_peak, daemon_error);
    }
    let thread_cpu_ns = resources::thread_cpu_ns() - thread0;
    let process_cpu_ns = resources::process_cpu_ns() - cpu0;
    let (user1, sys1) = resources::process_user_sys_ns();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    st.watch.check(st.prep.daemon.as_mut(), next);
    st.watch.settle(&mut st.integrity, monotonic_ns(), true);
    let pair_listeners: Vec<_> = ring.pair_listener_addr().into_iter().collect();
    let ring_stats = ring.stats();
    drop(ring);
    st.finish_relay();
    if let Some(d) = daemon.as_mut() {
        // After a signal the user wants the report now.
        let settle = if st.interrupted {
            config.settle.min(Duration::from_secs(1))
        } else {
            config.settle
        };
        d.settle(settle, &pair_listeners, next);
    }
    // The samples go on through settling: the daemon's fds coming back down are on them.
    let timeline = sampler.finish();
    Ok(RunResult {
        integrity: st.integrity,
        latencies: st.lat,
        started: next,
        events: st.events,
        bytes: st.bytes,
        peak_open: peak_open as u64,
        wall_ns,
        ramp_actual_ns: ramp_done_ns,
        interrupted: st.interrupted,
        stopped_by: st.stopped_by,
        backlog: st.backlog,
        backlog_full: st.backlog_full,
        daemon,
        thread_cpu_ns,
        process_cpu_ns,
        process_user_ns: user1.saturating_sub(user0),
        process_sys_ns: sys1.saturating_sub(sys0),
        loop_busy,
        rss_before,
        rss_per_open: (best_rss.0 > 0)
            .then(|| best_rss.1.saturating_sub(rss_before) as f64 / best_rss.0 as f64),
        ring: ring_stats,
        daemon_death: st.watch.death().cloned(),
        timeline,
    })
}

/// The loop thread's CPU time over wall time, in windows of about [`TICK_NS`]: a loop busy
/// through a window had no time to wait for the daemon, so the client, not the daemon, set the
/// pace then. (A thread waiting for a core counts as idle: on a machine whose cores are all
/// busy this understates it.)
#[derive(Debug, Clone, Copy)]
pub struct LoopBusy {
    last_ns: u64,
    last_cpu_ns: u64,
    /// The busiest window's fraction.
    pub peak: f64,
    /// Wall time of the windows at least [`LoopBusy::SATURATED`] busy, ns.
    pub saturated_ns: u64,
}

impl LoopBusy {
    /// The busy fraction from which a window counts as saturated.
    pub const SATURATED: f64 = 0.9;

    fn new(now: u64, cpu_ns: u64) -> LoopBusy {
        LoopBusy {
            last_ns: now,
            last_cpu_ns: cpu_ns,
            peak: 0.0,
            saturated_ns: 0,
        }
    }

    fn sample(&mut self, now: u64, cpu_ns: u64) {
        let wall = now.saturating_sub(self.last_ns);
        // Windows much shorter than a tick say little.
        if wall < TICK_NS / 2 {
            return;
        }
        let busy = cpu_ns.saturating_sub(self.last_cpu_ns) as f64 / wall as f64;
        self.peak = self.peak.max(busy.min(1.0));
        if busy >= Self::SATURATED {
            self.saturated_ns += wall;
        }
        (self.last_ns, self.last_cpu_ns) = (now, cpu_ns);
    }
}

/// When arrival `i` is due after the start (every open-loop arrival and closed-loop ramp slot
/// has a time).
fn offset(model: LoadModel, i: u64) -> u64 {
    model.scheduled_offset_ns(i).unwrap_or(0)
}

fn progress_bar(enabled: bool, planned: Option<u64>) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match planned {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} streams, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

impl State<'_> {
    /// Starts connection `index`; `Err` when a client limit stops the run.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        ring: &mut Ring,
        socket: &Arc<Path>,
        config: &StressConfig,
        index: u64,
        scheduled: u64,
        role: Role,
        model: LoadModel,
    ) -> Result<(), LimitHit> {
        let nonce = self.prep.nonces.nonce(index);
        let kind = if role == Role::Slow {
            &self.prep.slow
        } else {
            &self.prep.normal
        };
        let mut spec = HandoffSpec::new(socket.clone(), kind.data.build(&nonce))
            .pair(config.pair)
            .socket_type(config.socket_type)
            .deadline(HandoffSpec::NO_DEADLINE)
            // Diagnosing a handoff keeps one more fd per waiting stream: only the first few.
            .diagnose_handoff(index < DIAGNOSED_STREAMS);
        if role == Role::Slow {
            spec = spec.behaviour(crate::ring::ClientBehaviour::slow_reader(
                1,
                config.slow_pause,
                SLOW_RCVBUF,
            ));
        }
        let now = monotonic_ns();
        let origin_ns = if model.is_open() { scheduled } else { now };
        if self.measure_from.is_none() && now >= self.measure_after_ns {
            self.measure_from = Some(index);
            if let Some(relay) = self.prep.relay.as_mut() {
                relay.measure_from(index);
            }
        }
        let measured = role != Role::Slow && self.measure_from.is_some();
        if measured {
            self.lat
                .schedule_lag
                .saturating_record(now.saturating_sub(scheduled));
        }
        let id = match ring.start(spec) {
            Ok(id) => id,
            Err(e) => {
                let kind = match e {
                    HandoffError::FdLimit { .. } => LimitKind::Fds,
                    HandoffError::PortsExhausted { .. } => LimitKind::EphemeralPorts,
                    other => {
                        // Any other failure to set up the client side is this stream's alone.
                        self.integrity
                            .add(super::integrity::Outcome::HandoffFailed, || Example {
                                connection: index,
                                nonce: nonce.clone(),
                                bytes: 0,
                                detail: other.to_string(),
                            });
                        return Ok(());
                    }
                };
                return Err(LimitHit {
                    kind,
                    open_streams: self.open as u64,
                    detail: e.to_string(),
                });
            }
        };
        let (queue, allowed) = if role == Role::Slow {
            (1, config.timeout + config.slow_pause + SLOW_READ_ALLOWANCE)
        } else {
            (0, config.timeout)
        };
        self.deadlines[queue].push_back((now.saturating_add(duration_ns(allowed)), id, index));
        let relay = self.prep.relay.is_some() && role != Role::Slow;
        let conn = Conn {
            id,
            index,
            nonce,
            origin_ns,
            role,
            measured,
            sent_ns: None,
            closing: false,
            timed_out: false,
            check: StreamCheck::with_limits(StreamLimits::for_expected(
                kind.expected.as_ref(),
                config.max_head_bytes,
                config.max_line_bytes,
            )),
            arrivals: relay.then(|| Arrivals::with_capacity(self.prep.events_per_stream as usize)),
        };
        let slot = id.slot();
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(conn);
        self.open += 1;
        Ok(())
    }

    /// Closes every stream whose deadline has passed; returns the next deadline.
    fn expire(&mut self, ring: &mut Ring, now: u64) -> Option<u64> {
        for queue in &mut self.deadlines {
            while let Some(&(deadline, id, index)) = queue.front() {
                if deadline > now {
                    break;
                }
                queue.pop_front();
                if let Some(Some(c)) = self.conns.get_mut(id.slot())
                    && c.index == index
                    && !c.closing
                {
                    c.closing = true;
                    c.timed_out = true;
                    ring.close(id);
                }
            }
        }
        self.deadlines
            .iter()
            .filter_map(|q| q.front().map(|d| d.0))
            .min()
    }

    fn on_event(&mut self, ev: RingEvent<'_>, cmds: &mut crate::ring::Commands) {
        match ev {
            RingEvent::HandedOff { conn, timings } => {
                if let Some(Some(c)) = self.conns.get_mut(conn.slot()) {
                    c.sent_ns = Some(timings.sent_ns);
                }
            }
            RingEvent::Data { conn, ts, bytes } => {
                let Some(Some(c)) = self.conns.get_mut(conn.slot()) else {
                    return;
                };
                self.bytes += bytes.len() as u64;
                let kind = kind_of(self.prep, c.role);
                let mut ctx = Ctx {
                    expected: kind.expected.as_ref(),
                    nonces: &self.prep.nonces,
                    gaps: c.measured.then_some(&mut self.lat.inter_event_gap),
                };
                let n = c.check.feed(
                    ts,
                    bytes,
                    c.index,
                    c.nonce.as_bytes(),
                    &mut ctx,
                    c.arrivals.as_mut(),
                );
                self.events += u64::from(n);
                if !c.closing && c.check.settled() {
                    // More bytes cannot change this stream's outcome: stop reading them.
                    c.closing = true;
                    cmds.close(conn);
                }
                if let Role::Abort { after_events } = c.role
                    && !c.closing
                    && c.check.progress.events >= after_events
                {
                    c.closing = true;
                    cmds.close(conn);
                }
            }
            RingEvent::End {
                conn,
                ts,
                reason,
                fate,
            } => {
                let Some(c) = self.conns.get_mut(conn.slot()).and_then(Option::take) else {
                    return;
                };
                self.open -= 1;
                if self.closed_loop {
                    self.freed.push_back(ts);
                }
                self.end(c, ts, reason, fate);
            }
        }
    }

    fn end(&mut self, mut c: Conn, ts: u64, reason: EndReason, fate: Option<HandoffFate>) {
        let ending = match reason {
            _ if fate.is_some_and(HandoffFate::not_taken) && !self.interrupted => {
                Ending::NotTaken(fate.unwrap_or(HandoffFate::Unread))
            }
            EndReason::PeerClosed => {
                c.check.close();
                Ending::PeerClosed
            }
            EndReason::ClosedByClient if c.timed_out => Ending::Timeout,
            EndReason::ClosedByClient if self.interrupted => Ending::Interrupted,
            EndReason::ClosedByClient => Ending::ClientClosed,
            EndReason::Timeout => Ending::Timeout,
            EndReason::Error(e) if c.sent_ns.is_none() => {
                let hit = |kind| LimitHit {
                    kind,
                    open_streams: self.open as u64 + 1,
                    detail: e.to_string(),
                };
                match e {
                    HandoffError::BacklogFull { .. } => {
                        self.backlog_full += 1;
                        self.backlog
                            .get_or_insert_with(|| hit(LimitKind::DaemonBacklog));
                        Ending::HandoffFailed(e.to_string())
                    }
                    // The client's own limits, met midway through a handoff: not the daemon's
                    // failure, and the run starts nothing more.
                    HandoffError::FdLimit { .. } => {
                        self.stopped_by.get_or_insert_with(|| hit(LimitKind::Fds));
                        Ending::ClientLimit(e.to_string())
                    }
                    HandoffError::PortsExhausted { .. } => {
                        self.stopped_by
                            .get_or_insert_with(|| hit(LimitKind::EphemeralPorts));
                        Ending::ClientLimit(e.to_string())
                    }
                    _ => Ending::HandoffFailed(e.to_string()),
                }
            }
            EndReason::Error(e) => Ending::ReadError(e.to_string()),
        };
        let kind = kind_of(self.prep, c.role);
        let nonces = &self.prep.nonces;
        let p = &c.check.progress;
        let (outcome, detail) = judge(
            p,
            &ending,
            kind.expected.as_ref(),
            c.nonce.as_bytes(),
            |i| nonces.nonce(i),
        );
        self.watch
            .add(&mut self.integrity, outcome, ts, || Example {
                connection: c.index,
                nonce: c.nonce.clone(),
                bytes: p.bytes,
                detail,
            });
        if c.measured {
            let since = |t: u64| t.saturating_sub(c.origin_ns);
            let lat = &mut self.lat;
            // Only a handoff the daemon took: a byte came, or it closed the connection.
            let taken = p.bytes > 0 || matches!(ending, Ending::PeerClosed);
            if let Some(sent) = c.sent_ns.filter(|_| taken) {
                lat.handoff.saturating_record(since(sent));
            }
            if let Some(head) = p.head_ns {
                lat.time_to_head.saturating_record(since(head));
            }
            if let Some(first) = p.first_event_ns {
                lat.first_event.saturating_record(since(first));
            }
            if outcome == super::integrity::Outcome::Completed {
                lat.total.saturating_record(since(ts));
            }
        }
        let content_right = p.fault.is_none() && p.crosstalk.is_none();
        if let (Some(relay), Some(arrivals)) = (self.prep.relay.as_mut(), c.arrivals.take())
            && content_right
        {
            relay.client(c.index, arrivals, &mut self.lat.relay);
        }
    }

    /// Joins what an embedded mock has reported since the last call.
    fn drain_mock(&mut self) {
        let Mock::Embedded(_, queue) = &self.prep.mock else {
            return;
        };
        let batch = match queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        if let Some(relay) = self.prep.relay.as_mut() {
            for (index, writes) in batch {
                relay.upstream(index, &writes, &mut self.lat.relay);
            }
        }
    }

    /// After the run: the mock's half of every join still waiting.
    fn finish_relay(&mut self) {
        if self.prep.relay.as_ref().is_none_or(|r| r.waiting() == 0) {
            return;
        }
        match &self.prep.mock {
            Mock::Embedded(..) => {
                // The mock reports a request when its response ends, which can be just after
                // the client saw the daemon close.
                for _ in 0..20 {
                    self.drain_mock();
                    if self.prep.relay.as_ref().is_none_or(|r| r.waiting() == 0) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Mock::Remote(remote) => {
                let nonces = self.prep.nonces.clone();
                let (relay, hist) = (&mut self.prep.relay, &mut self.lat.relay);
                let Some(relay) = relay.as_mut() else { return };
                let result = remote.get_streaming("/_streamcheck/requests?view=writes", |body| {
                    super::relay::read_log(body, &nonces, &mut |index, writes| {
                        relay.upstream(index, writes, hist)
                    })
                });
                if let Err(e) = result {
                    relay.log_error = Some(e);
                }
            }
            Mock::None => {}
        }
    }
}

/// Streams (the first ones started) whose handoff is diagnosed when they get no byte: each
/// keeps its daemon connection open until its first byte, so a few, not 10,000.
pub(super) const DIAGNOSED_STREAMS: u64 = 64;

/// A slow reader's receive buffer: small, so the daemon's writes to it block soon.
const SLOW_RCVBUF: u32 = 4096;
/// Time a slow reader gets beyond `--timeout` and its pause: its answer is 8 MiB.
const SLOW_READ_ALLOWANCE: Duration = Duration::from_secs(30);

fn kind_of(prep: &Prepared, role: Role) -> &Kind {
    if role == Role::Slow {
        &prep.slow
    } else {
        &prep.normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_busy_counts_the_windows_the_loop_thread_was_saturated() {
        let mut busy = LoopBusy::new(0, 0);
        // Too short a window: ignored, and the next one starts where this one did.
        busy.sample(TICK_NS / 4, TICK_NS / 4);
        assert_eq!((busy.peak, busy.saturated_ns), (0.0, 0));
        // Half busy over the first 100 ms: not saturated.
        busy.sample(TICK_NS, TICK_NS / 2);
        assert_eq!((busy.peak, busy.saturated_ns), (0.5, 0));
        // Busy the whole next 200 ms: saturated for that long.
        busy.sample(3 * TICK_NS, 5 * TICK_NS / 2);
        assert_eq!((busy.peak, busy.saturated_ns), (1.0, 2 * TICK_NS));
        // Idle again: the peak and the saturated time stay.
        busy.sample(4 * TICK_NS, 5 * TICK_NS / 2);
        assert_eq!((busy.peak, busy.saturated_ns), (1.0, 2 * TICK_NS));
    }
}
