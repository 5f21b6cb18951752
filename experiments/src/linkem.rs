//! The userspace link emulator used where the kernel has no `netem`: the
//! hidden `mqtt-lwa-experiment linkem` runs inside the link's router
//! namespace, takes the packets that iptables' NFQUEUE target hands it (one
//! queue per direction) and gives each a DROP verdict (loss) or an ACCEPT
//! verdict once its [`DelayLine`] releases it.
//!
//! The netlink side is the `nfq` crate; everything that decides is in
//! [`super::delayline`].

use std::io::Write as _;
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::delayline::{Admission, DelayLine};

/// How often queued packets and new arrivals are checked while packets are in flight.
///
/// `nfq` exposes no file descriptor to wait on with a deadline, so while
/// packets wait the loop polls (non-blocking receive, then sleep up to this);
/// with nothing queued it blocks in the receive. Arrivals are therefore seen
/// up to this late, which adds at most this much to the configured delay.
const POLL: Duration = Duration::from_micros(100);

/// Settings of one emulator process.
#[derive(Debug, Clone)]
pub struct LinkemOptions {
    /// NFQUEUE numbers to serve, one per direction (each gets its own delay line).
    pub queues: Vec<u16>,
    /// One-way delay.
    pub delay: Duration,
    /// Uniform jitter bound.
    pub jitter: Duration,
    /// Drop probability per packet.
    pub loss: f64,
}

/// Serves the queues until an error (the process is killed when the link is removed).
///
/// Prints `ready` on stdout once every queue is bound, so the runner starts
/// traffic only when the delay is really applied.
pub fn run_linkem(opts: &LinkemOptions) -> std::io::Result<()> {
    let mut queue = Queue::open()?;
    let mut lines = Vec::new();
    for &q in &opts.queues {
        queue.bind(q)?;
        // Metadata only: the verdict needs the packet id, not its bytes.
        queue.set_copy_range(q, 0)?;
        queue.set_queue_max_len(q, 16_384)?;
        // A full queue accepts instead of dropping: overload must not look like loss.
        queue.set_fail_open(q, true)?;
        lines.push((
            q,
            DelayLine::<Message>::new(opts.delay, opts.jitter, opts.loss),
        ));
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    let mut rng = StdRng::from_entropy();
    loop {
        let now = Instant::now();
        for (_, line) in lines.iter_mut() {
            while let Some(mut msg) = line.pop_due(now) {
                msg.set_verdict(Verdict::Accept);
                queue.verdict(msg)?;
            }
        }
        let next = lines.iter().filter_map(|(_, l)| l.next_release()).min();
        queue.set_nonblocking(next.is_some());
        match queue.recv() {
            Ok(msg) => {
                let now = Instant::now();
                let q = msg.get_queue_num();
                let Some((_, line)) = lines.iter_mut().find(|(n, _)| *n == q) else {
                    let mut msg = msg;
                    msg.set_verdict(Verdict::Accept);
                    queue.verdict(msg)?;
                    continue;
                };
                if let Admission::Dropped(mut msg) = line.push(msg, now, &mut rng) {
                    msg.set_verdict(Verdict::Drop);
                    queue.verdict(msg)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(next) = next {
                    let wait = next.saturating_duration_since(Instant::now()).min(POLL);
                    std::thread::sleep(wait);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
