//! One experiment run: brokers started one mode at a time, every phase of
//! [`super::workload`] against each, then data files, plots and the report
//! written to `results/<run>/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::affinity;
use super::broker::{mosquitto_version, BrokerHost, BrokerProcess, Credentials, MOSQUITTO_BIN};
use super::link::LinkProfile;
use super::linkprobe::{self, LinkResult};
use super::matrix::{BrokerKind, Mode, Profile};
use super::netns::{self, EmulatedLink};
use super::plots;
use super::procstat::Process;
use super::progress::Progress;
use super::remote::{BrokerUnderTest, RemoteBroker, RemoteSpec};
use super::repeat::{self, BlockLoad, CellRepeat, LoadAvg, MemoryRepeat, RepeatData, StormRepeat};
use super::results::{RunMeta, RunResults};
use super::workload::{measure_mode, Target};

/// Errors that stop a run (a failing mode only adds a note).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// Files or the runtime.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Credentials or broker set-up.
    #[error(transparent)]
    Broker(#[from] super::broker::BrokerError),
}

/// What to run and where to put it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Profile to run.
    pub profile: Profile,
    /// Links to measure on, in order (`profile.links` resolved; the first one's figures
    /// fill the main tables and plots).
    pub links: Vec<LinkProfile>,
    /// Parent of the run directory (`experiments/results`).
    pub results_dir: PathBuf,
    /// Run directory name; default `<profile>-<UTC timestamp>`.
    pub run_name: Option<String>,
    /// The `mqtt-lwa` binary that serves as our broker.
    pub mqtt_lwa_bin: PathBuf,
    /// The harness's own binary (`mqtt-lwa-experiment`), started as `linkem` inside an
    /// emulated link's router namespace.
    pub harness_bin: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Pin the broker to one CPU and the runner to another (`--pin-cpus`).
    pub pin_cpus: bool,
    /// Measure a broker served by `experiment serve` on another machine instead.
    pub remote: Option<RemoteSpec>,
}

pub(crate) fn utc_stamp() -> (String, String) {
    let t = time::OffsetDateTime::now_utc();
    let compact = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let readable = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    (compact, readable)
}

/// A scratch directory for credentials (private keys never go into results), removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the whole profile; returns the run directory.
pub fn run(opts: &RunOptions) -> Result<PathBuf, ExperimentError> {
    let started = Instant::now();
    let (stamp, readable) = utc_stamp();
    let run_name = opts
        .run_name
        .clone()
        .unwrap_or_else(|| format!("{}-{stamp}", opts.profile.name));
    let dir = opts.results_dir.join(&run_name);
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::Io(dir.display().to_string(), e))?;
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "mqtt-lwa-experiment-{}-{stamp}",
        std::process::id()
    )));
    let remote = opts
        .remote
        .as_ref()
        .map(|r| RemoteBroker::open(&r.host, &r.dir))
        .transpose()?;
    let mut notes = Vec::new();
    let links = resolve_links(opts, remote.as_ref(), &mut notes);
    // Every emulated link of the run uses the same subnet, one link at a time.
    let subnet = link_subnet(&links, &mut notes);
    let hosts: Vec<String> = subnet
        .map(|n| vec![netns::broker_addr(n).to_string()])
        .unwrap_or_default();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let mut local_creds = None;
    let creds: &Credentials = match &remote {
        Some(r) => &r.creds,
        None => local_creds.insert(Credentials::create_for(&scratch.0, &hosts)?),
    };

    let (brokers, plan) = plan_blocks(opts, remote.as_ref(), &mut notes);
    let total: u64 = links
        .iter()
        .map(|l| {
            let p = opts.profile.for_link(l);
            link_plan(&plan, &p).len() as u64 * cells_of_block(&p, p.repeats.max(1))
        })
        .sum::<u64>();
    let bar = Progress::new(total, opts.progress);

    notes.extend(raise_fd_limit(&opts.profile));
    // Before the runtime exists, so its threads inherit the runner's CPU.
    let pinning = opts.pin_cpus.then(|| pin_runner(remote.is_some()));
    let pin_brokers = remote.is_none() && pinning.as_ref().is_some_and(|(ok, _)| *ok);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ExperimentError::Io("tokio runtime".into(), e))?;
    stop_on_signal(&runtime, subnet.is_some());
    let cx = RunContext {
        opts,
        remote: remote.as_ref(),
        creds,
        subnet,
        plan: &plan,
        bar: &bar,
        runtime: &runtime,
        pin_brokers,
    };
    let mut measured = Measured::default();
    for (seq, link) in links.iter().enumerate() {
        measure_link(&cx, seq, link, &mut measured, &mut notes);
    }
    let Measured {
        modes,
        mut rows,
        loads,
        storms,
        idle_memory,
        links: link_results,
    } = measured;
    let stock = if remote.is_none() {
        stock_bursts(
            opts,
            creds,
            &plan,
            pin_brokers,
            &scratch.0,
            &bar,
            &mut notes,
        )
    } else {
        Vec::new()
    };
    repeat::fill_wire_bytes(&mut rows);
    let (cells, spreads) = repeat::aggregate(&rows);
    // The merged cells keep the latency histograms; the rows keep the repeats' percentiles.
    for row in &mut rows {
        row.cell.latency_hdr = None;
    }
    bar.finish_and_clear();
    drop(runtime);

    let mut results = RunResults {
        meta: RunMeta {
            run: run_name,
            started_utc: readable,
            seconds: started.elapsed().as_secs_f64(),
            command: opts.command.clone(),
            machine: {
                let mut m = machine();
                m.push((
                    "CPU pinning".into(),
                    pinning.map_or_else(affinity::unpinned, |(_, d)| d),
                ));
                m
            },
            versions: versions(
                &opts.mqtt_lwa_bin,
                remote.as_ref(),
                brokers.contains(&BrokerKind::Mosquitto),
            ),
            link: links
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            profile: Profile {
                links: links.iter().map(|l| l.name.clone()).collect(),
                ..opts.profile.clone()
            },
            notes,
            remote_broker: remote.as_ref().map(RemoteBroker::describe),
        },
        modes,
        cells,
        repeats: RepeatData {
            cores: super::storm::machine_cores(),
            broker_host_cores: remote.as_ref().and_then(RemoteBroker::cores),
            rows,
            storms,
            idle_memory,
            spreads,
            loads,
        },
        links: link_results,
        stock,
    };
    // Plots show the first link; every link's figures are in the data files and the report.
    match plots::draw_all(&results.for_link(&results.primary_link()), &dir) {
        Ok(files) => {
            if files.is_empty() {
                results
                    .meta
                    .notes
                    .push("no plots: nothing was measured".into());
            }
        }
        Err(e) => results.meta.notes.push(format!("plots not drawn: {e}")),
    }
    let io = |what: &str| {
        let what = format!("{}/{what}", dir.display());
        move |e| ExperimentError::Io(what, e)
    };
    results.write_json(&dir).map_err(io("results.json"))?;
    super::render::write_outputs(&results, &dir).map_err(io("report and tables"))?;
    Ok(dir)
}

/// What every link's measurement shares.
struct RunContext<'a> {
    opts: &'a RunOptions,
    remote: Option<&'a RemoteBroker>,
    creds: &'a Credentials,
    subnet: Option<u8>,
    plan: &'a [(BrokerKind, Mode)],
    bar: &'a Progress,
    runtime: &'a tokio::runtime::Runtime,
    pin_brokers: bool,
}

/// What the links' blocks measured, gathered over the run.
#[derive(Default)]
struct Measured {
    modes: Vec<super::results::ModeResult>,
    rows: Vec<CellRepeat>,
    loads: Vec<BlockLoad>,
    storms: Vec<StormRepeat>,
    idle_memory: Vec<MemoryRepeat>,
    links: Vec<LinkResult>,
}

/// Measures one link: sets it up (an emulated one's namespaces live until this returns),
/// measures it (iperf3, round trips), then every (broker, mode) block of the plan in
/// every repeat, interleaved ([`repeat::schedule`]).
fn measure_link(
    cx: &RunContext<'_>,
    seq: usize,
    link: &LinkProfile,
    out: &mut Measured,
    notes: &mut Vec<String>,
) {
    let profile = cx.opts.profile.for_link(link);
    let plan = link_plan(cx.plan, &profile);
    let cells_per_mode = cells_per_mode(&profile);
    let repeats = profile.repeats.max(1);
    let cells_per_repeat = cells_per_repeat(&profile);
    // Loopback: 127.0.0.1 here. Emulated: namespaces created now, removed at the end of
    // this iteration (or on any early exit, panics included) by `EmulatedLink`'s drop.
    // Remote: the served brokers are reached through `remote`, not `host`.
    let (mut emulated, host) = match (link.is_emulated(), cx.subnet) {
        (false, _) => (None, BrokerHost::loopback()),
        (true, None) => {
            notes.push(format!("link {}: not measured (no cx.subnet)", link.name));
            cx.bar.inc(
                plan.len() as u64 * (cells_per_mode + (repeats as u64 - 1) * cells_per_repeat),
            );
            return;
        }
        (true, Some(n)) => {
            cx.bar
                .set_message(format!("{}: creating the link", link.name));
            match EmulatedLink::create(link, n, seq as u32, &cx.opts.harness_bin) {
                Ok(l) => {
                    let host = BrokerHost {
                        netns: Some(l.broker_ns.clone()),
                        ip: l.broker_addr.into(),
                    };
                    (Some(l), host)
                }
                Err(e) => {
                    notes.push(format!("link {}: not measured: {e}", link.name));
                    cx.bar.inc(
                        plan.len() as u64
                            * (cells_per_mode + (repeats as u64 - 1) * cells_per_repeat),
                    );
                    return;
                }
            }
        }
    };
    let mut link_result = match cx.remote {
        Some(r) => {
            cx.bar
                .set_message(format!("{}: iperf3 and round trips", link.name));
            r.probe_link()
        }
        None => LinkResult::new(
            link,
            emulated
                .as_ref()
                .map(|l| l.emulation.describe())
                .unwrap_or(""),
            host.ip.to_string(),
        ),
    };
    if let Some(l) = &emulated {
        cx.bar.set_message(format!("{}: iperf3", link.name));
        match linkprobe::iperf(l) {
            Ok(f) => link_result.set_iperf(&f),
            Err(e) => link_result.notes.push(format!("iperf3 not measured: {e}")),
        }
    }
    let on_link = |m: &super::results::ModeResult| m.link == link.name;
    for (rep, kind, mode) in repeat::schedule(&plan, repeats) {
        let block_cells = if rep == 0 {
            cells_per_mode
        } else {
            cells_per_repeat
        };
        if rep > 0
            && !out
                .modes
                .iter()
                .any(|m| on_link(m) && m.broker == kind && m.mode == mode)
        {
            // Repeat 0 of this block failed (its note says why).
            cx.bar.inc(block_cells);
            continue;
        }
        let started_broker = match (cx.remote, kind) {
            (Some(r), _) => r.broker(kind, mode),
            (None, BrokerKind::MqttLwa) => {
                BrokerProcess::start_mqtt_lwa_on(&cx.opts.mqtt_lwa_bin, mode, cx.creds, &host)
                    .map(BrokerUnderTest::Local)
            }
            (None, BrokerKind::Mosquitto) => {
                BrokerProcess::start_mosquitto_on(mode, cx.creds, &host).map(BrokerUnderTest::Local)
            }
        };
        let broker = match started_broker {
            Ok(b) => b,
            Err(e) => {
                notes.push(format!("{} {kind} {mode}: not measured: {e}", link.name));
                cx.bar.inc(block_cells);
                continue;
            }
        };
        if let (true, Process::Pid(pid)) = (cx.pin_brokers, broker.process()) {
            if let Err(e) = affinity::pin_process(pid, affinity::BROKER_CPU) {
                notes.push(format!("{kind} {mode}: broker not pinned: {e}"));
            }
        }
        if emulated.is_some() && link_result.connect_samples == 0 {
            link_result.connect_rtt_ms = linkprobe::connect_rtt_ms(broker.addr(), 10);
            link_result.connect_samples = 10;
        }
        let tls = match super::workload::TlsClient::for_mode(mode, cx.creds) {
            Ok(t) => t,
            Err(e) => {
                notes.push(format!("{} {kind} {mode}: not measured: {e}", link.name));
                cx.bar.inc(block_cells);
                continue;
            }
        };
        let target = Target {
            broker: kind,
            process: broker.process(),
            addr: broker.addr(),
            mode,
            creds: cx.creds,
            tls: tls.as_ref(),
        };
        if let Some(tls) = target.tls {
            if let Err(e) = cx.runtime.block_on(tls.warm_up(target.addr)) {
                notes.push(format!("{} {kind} {mode}: not measured: {e}", link.name));
                cx.bar.inc(block_cells);
                continue;
            }
        }
        let tick = |msg: &str| {
            cx.bar.set_message(format!("{}: {msg}", link.name));
            cx.bar.inc(1);
        };
        let start = LoadAvg::now();
        let broker_host_start = cx.remote.and_then(RemoteBroker::load);
        let own: Vec<Process> = match broker.process() {
            Process::Pid(pid) => vec![Process::Current, Process::Pid(pid)],
            _ => vec![Process::Current],
        };
        let cpu_start = repeat::CpuSnapshot::take(&own);
        let measured = if rep == 0 {
            cx.runtime
                .block_on(measure_mode(&target, &profile, &tick))
                .map(|mut m| {
                    m.mode.link = link.name.clone();
                    let storm = m.mode.storm.clone();
                    let idle = m.mode.idle_memory.clone();
                    (Some(m.mode), m.notes, m.cells, storm, idle)
                })
        } else {
            cx.runtime
                .block_on(repeat::measure_repeat(&target, &profile, rep, &tick))
                .map(|m| (None, m.notes, m.cells, m.storm, m.idle_memory))
        };
        drop(broker);
        if let Some(l) = emulated.as_mut() {
            if !l.emulator_alive() {
                notes.push(format!(
                    "link {}: the delay/loss emulator (mqtt-lwa-experiment linkem) died during \
                     {kind} {mode}; packets passed without delay or loss from then on, so \
                     that block's figures were dropped and the rest of this link was not \
                     measured",
                    link.name
                ));
                break;
            }
        }
        match measured {
            Ok((mode_result, mode_notes, cells, storm, idle)) => {
                if !idle.is_empty() {
                    out.idle_memory.push(MemoryRepeat {
                        link: link.name.clone(),
                        repeat: rep,
                        broker: kind,
                        mode,
                        steps: idle,
                    });
                }
                out.modes.extend(mode_result);
                out.storms.extend(storm.map(|storm| StormRepeat {
                    link: link.name.clone(),
                    repeat: rep,
                    broker: kind,
                    mode,
                    storm,
                }));
                notes.extend(mode_notes.into_iter().map(|n| {
                    if !link.is_emulated() {
                        n
                    } else {
                        format!("{}: {n}", link.name)
                    }
                }));
                out.rows.extend(cells.into_iter().map(|mut cell| {
                    cell.link = link.name.clone();
                    CellRepeat { repeat: rep, cell }
                }));
            }
            Err(e) => notes.push(format!(
                "{} {kind} {mode}: measurement failed (repeat {}): {e}",
                link.name,
                rep + 1
            )),
        }
        out.loads.push(BlockLoad {
            link: link.name.clone(),
            repeat: rep,
            broker: kind,
            mode,
            start,
            end: LoadAvg::now(),
            broker_host_start,
            broker_host_end: cx.remote.and_then(RemoteBroker::load),
            other_cpu_share: cpu_start
                .zip(repeat::CpuSnapshot::take(&own))
                .and_then(|(a, b)| a.other_share(&b)),
        });
    }
    out.links.push(link_result);
    drop(emulated.take());
}

/// The links a run measures: the remote's network with `--remote`, else the profile's
/// (loopback when none).
fn resolve_links(
    opts: &RunOptions,
    remote: Option<&RemoteBroker>,
    notes: &mut Vec<String>,
) -> Vec<LinkProfile> {
    if let Some(r) = remote {
        if opts.links.iter().any(|l| !l.is_loopback()) {
            notes.push(
                "emulated links not measured: with --remote the network between the two \
                 machines is the link"
                    .into(),
            );
        }
        vec![r.link()]
    } else if opts.links.is_empty() {
        vec![LinkProfile::loopback()]
    } else {
        opts.links.clone()
    }
}

/// The subnet every emulated link of the run uses, one link at a time (stale namespaces of
/// killed runs removed first); `None` when no link is emulated or none is free.
fn link_subnet(links: &[LinkProfile], notes: &mut Vec<String>) -> Option<u8> {
    if !links.iter().any(LinkProfile::is_emulated) {
        return None;
    }
    let removed = netns::sweep_stale();
    if !removed.is_empty() {
        notes.push(format!(
            "removed namespaces/veths left by killed runs: {}",
            removed.join(", ")
        ));
    }
    match netns::pick_subnet() {
        Ok(n) => Some(n),
        Err(e) => {
            // Loopback still runs; each emulated link gets a "not measured" note.
            notes.push(format!("emulated links unavailable: {e}"));
            None
        }
    }
}

/// The brokers of the run (mosquitto left out, with a note, where it cannot run) and the
/// (broker, mode) blocks each link measures.
fn plan_blocks(
    opts: &RunOptions,
    remote: Option<&RemoteBroker>,
    notes: &mut Vec<String>,
) -> (Vec<BrokerKind>, Vec<(BrokerKind, Mode)>) {
    let mut brokers = opts.profile.brokers.clone();
    if let Some(r) = remote {
        notes.push(format!(
            "Remote broker: {}. Its CPU time and RSS were read from its /proc by `serve` at \
             each sample; `repeats.csv` has both machines' load averages around each block.",
            r.describe()
        ));
        if brokers.contains(&BrokerKind::Mosquitto) && !r.serves_mosquitto() {
            notes.push("mosquitto baseline not measured: `experiment serve` did not run it".into());
            brokers.retain(|b| *b != BrokerKind::Mosquitto);
        }
        if !r.certificate_names_ip() {
            notes.push(format!(
                "the broker certificate names {:?}, not {}: TLS modes fail verification \
                 (start `serve` with `--name {}`)",
                r.info.names, r.ip, r.ip
            ));
        }
    }
    // A remote broker host serves its own mosquitto; only a local run needs one here.
    if remote.is_none()
        && brokers.contains(&BrokerKind::Mosquitto)
        && !Path::new(MOSQUITTO_BIN).exists()
    {
        notes.push(format!(
            "mosquitto baseline skipped: {MOSQUITTO_BIN} is not installed"
        ));
        brokers.retain(|b| *b != BrokerKind::Mosquitto);
    }
    // A mode no broker of this run serves measures nothing: say so instead of leaving a gap.
    for m in &opts.profile.modes {
        if !brokers.iter().any(|b| b.supports(*m)) {
            notes.push(format!(
                "{m} not measured: only {} serve it, and none ran",
                BrokerKind::ALL
                    .iter()
                    .filter(|b| b.supports(*m))
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let plan = brokers
        .iter()
        .flat_map(|b| {
            opts.profile
                .modes
                .iter()
                .filter(|m| b.supports(**m))
                .map(move |m| (*b, *m))
        })
        .collect();
    (brokers, plan)
}

/// Progress steps of a (broker, mode) block's first repeat: its (payload, QoS) cells, then
/// set-up, storm and idle memory.
fn cells_per_mode(p: &Profile) -> u64 {
    (p.payloads.len() * p.qos.len()) as u64 + 3
}

/// Progress steps of a later repeat: the idle-memory phase, the (payload, QoS) cells and the
/// storm.
fn cells_per_repeat(p: &Profile) -> u64 {
    (p.payloads.len() * p.qos.len()) as u64
        + u64::from(p.storm.millis > 0)
        + u64::from(p.idle_connections.iter().any(|&n| n > 0))
}

/// Progress steps of one (broker, mode) block over all its repeats.
fn cells_of_block(p: &Profile, repeats: usize) -> u64 {
    cells_per_mode(p) + (repeats as u64 - 1) * cells_per_repeat(p)
}

/// The (broker, mode) blocks measured on a link: the profile's emulated links may measure
/// fewer modes than loopback.
fn link_plan(plan: &[(BrokerKind, Mode)], p: &Profile) -> Vec<(BrokerKind, Mode)> {
    plan.iter()
        .filter(|(_, m)| p.modes.contains(m))
        .copied()
        .collect()
}

/// Interrupted runs (SIGINT, SIGTERM) exit from a task of `runtime` without running
/// destructors: it stops the brokers they started and removes the links they built.
pub(crate) fn stop_on_signal(runtime: &tokio::runtime::Runtime, emulating: bool) {
    runtime.spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let brokers = super::broker::kill_live_brokers();
        let removed = if emulating {
            tokio::task::spawn_blocking(netns::remove_own)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        eprintln!(
            "experiment interrupted; stopped {brokers} broker(s){}{}",
            if removed.is_empty() { "" } else { "; removed " },
            removed.join(", ")
        );
        std::process::exit(130);
    });
}

/// The stock-client bursts ([`super::stock`]): each repeat runs every
/// planned broker in plaintext, alternating which goes first, with one burst
/// per QoS of the profile.
fn stock_bursts(
    opts: &RunOptions,
    creds: &Credentials,
    plan: &[(BrokerKind, Mode)],
    pin_brokers: bool,
    scratch: &Path,
    bar: &Progress,
    notes: &mut Vec<String>,
) -> Vec<super::stock::StockBurst> {
    let n = opts.profile.stock_messages;
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    if !super::stock::available() {
        notes.push("stock-client bursts: not measured (mosquitto-clients not installed)".into());
        return out;
    }
    let mut kinds: Vec<BrokerKind> = plan
        .iter()
        .filter(|(_, m)| *m == Mode::Plain)
        .map(|(k, _)| *k)
        .collect();
    for rep in 0..opts.profile.repeats.max(1) {
        for &kind in &kinds {
            bar.set_message(format!("stock clients: {kind}, repeat {}", rep + 1));
            let started = match kind {
                BrokerKind::MqttLwa => {
                    BrokerProcess::start_mqtt_lwa(&opts.mqtt_lwa_bin, Mode::Plain, creds)
                }
                BrokerKind::Mosquitto => BrokerProcess::start_mosquitto(Mode::Plain, creds),
            };
            let broker = match started {
                Ok(b) => b,
                Err(e) => {
                    notes.push(format!("stock-client bursts, {kind}: not measured: {e}"));
                    continue;
                }
            };
            if pin_brokers {
                if let Err(e) = affinity::pin_process(broker.pid(), affinity::BROKER_CPU) {
                    notes.push(format!(
                        "stock-client bursts, {kind}: broker not pinned: {e}"
                    ));
                }
            }
            for &qos in &opts.profile.qos {
                match super::stock::burst(broker.addr, kind, qos, n, rep, scratch) {
                    Ok(b) => out.push(b),
                    Err(e) => notes.push(format!(
                        "stock-client burst {kind} QoS {qos} (repeat {}): {e}",
                        rep + 1
                    )),
                }
            }
        }
        kinds.reverse();
    }
    out
}

/// Raises the open-file limit to its hard maximum before any broker starts, so
/// mosquitto (which does not raise its own) inherits it; a note if it is still
/// too low for the profile's largest idle-connection count.
fn raise_fd_limit(profile: &Profile) -> Option<String> {
    let need = profile.idle_connections.iter().copied().max().unwrap_or(0) as u64 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < need => Some(format!(
            "open-file limit is {n} (hard limit), below the {need} the largest idle-connection \
             step needs: that step will fail"
        )),
        Ok(_) => None,
        Err(e) => Some(format!("cannot raise the open-file limit: {e}")),
    }
}

/// Pins the runner's thread to [`affinity::RUNNER_CPU`]: whether it worked, and the
/// settings-table line.
fn pin_runner(remote: bool) -> (bool, String) {
    if std::thread::available_parallelism().map_or(0, |n| n.get()) < 2 {
        return (false, "requested, not applied: fewer than 2 CPUs".into());
    }
    match affinity::pin_current_thread(affinity::RUNNER_CPU) {
        Ok(()) if remote => (
            true,
            format!(
                "runner (clients, relays) on CPU {}; the remote broker is not pinned",
                affinity::RUNNER_CPU
            ),
        ),
        Ok(()) => (true, affinity::pinned()),
        Err(e) => (
            false,
            format!("requested, not applied: sched_setaffinity: {e}"),
        ),
    }
}

fn first_line_with(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(
        line.split_once([':', '='])?
            .1
            .trim()
            .trim_matches('"')
            .to_owned(),
    )
}

/// CPU, cores, memory, kernel, OS of this machine.
pub(crate) fn machine() -> Vec<(String, String)> {
    let mut m = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        m.push((k.to_owned(), v.unwrap_or_else(|| "unknown".into())));
    };
    push(
        "CPU",
        first_line_with("/proc/cpuinfo", "model name").or_else(|| {
            first_line_with("/proc/cpuinfo", "CPU part").map(|p| format!("ARM part {p}"))
        }),
    );
    push(
        "cores available",
        // The machine's, not this thread's: with --pin-cpus the runner is pinned to one
        // CPU before this is read, and the load warning compares against it.
        Some(super::storm::machine_cores().to_string()),
    );
    push("memory", first_line_with("/proc/meminfo", "MemTotal"));
    push(
        "kernel",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_owned()),
    );
    push("OS", first_line_with("/etc/os-release", "PRETTY_NAME"));
    push(
        "load average at end",
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|s| s.trim().to_owned()),
    );
    m
}

/// mqtt-lwa as built (commit, dirty flag, rustc, target and profile, embedded
/// at build time, so the record does not depend on the directory the run
/// starts in), and mosquitto: the broker host's when the broker is remote,
/// "not used" when the run leaves it out.
pub(crate) fn versions(
    bin: &Path,
    remote: Option<&RemoteBroker>,
    mosquitto_used: bool,
) -> Vec<(String, String)> {
    // The broker's own `--version`: the harness is a separate binary, possibly of another
    // build than the broker it measures.
    let broker = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            text.strip_prefix("mqtt-lwa ").map(str::to_string)
        })
        .unwrap_or_else(|| "version not reported".into());
    let mut v = vec![
        ("mqtt-lwa".into(), format!("{broker} ({})", bin.display())),
        (
            "mqtt-lwa-experiment".into(),
            mqtt_lwa::build_info::LONG_VERSION.into(),
        ),
        (
            "build".into(),
            if cfg!(debug_assertions) {
                "debug (unoptimised)"
            } else {
                "optimised"
            }
            .into(),
        ),
        ("rustc".into(), mqtt_lwa::build_info::RUSTC.into()),
    ];
    match remote {
        Some(r) => {
            if r.info.versions.is_empty() {
                v.push((
                    "broker host".into(),
                    "not recorded (serve.json from an older mqtt-lwa)".into(),
                ));
            }
            for (k, val) in &r.info.versions {
                v.push((format!("{k} (broker host)"), val.clone()));
            }
        }
        None => v.push((
            "mosquitto".into(),
            if mosquitto_used {
                mosquitto_version().unwrap_or_else(|| "not installed".into())
            } else {
                "not used in this run".into()
            },
        )),
    }
    v
}

/// What `experiment serve` records about its own build and brokers in `serve.json`.
pub(crate) fn serve_versions(mosquitto_served: bool) -> Vec<(String, String)> {
    vec![
        ("mqtt-lwa".into(), mqtt_lwa::build_info::LONG_VERSION.into()),
        ("rustc".into(), mqtt_lwa::build_info::RUSTC.into()),
        (
            "mosquitto".into(),
            if mosquitto_served {
                mosquitto_version().unwrap_or_else(|| "not installed".into())
            } else {
                "not served".into()
            },
        ),
    ]
}
