//! A bare-metal LWA1 client: handshake with an in-process broker (both
//! sides of lwa-core, RustCrypto backend), then one record sealed by the
//! client and opened by the broker, and one the other way.
//!
//! It exists to be linked for `thumbv7em-none-eabihf` and measured
//! (scripts/embedded-check.sh prints its sections; lwa-core/README.md has
//! the table). It is not run here: there is no board or qemu-system-arm on
//! the build machine. A device would put its TRNG seed, its MQTT transport
//! and a real heap where this file has stand-ins.
//!
//! The two `unsafe` items are the board glue every bare-metal binary has
//! (an entry symbol, a global allocator); lwa-core itself forbids unsafe code.

#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::hint::black_box;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicUsize, Ordering};

use lwa_core::backend::rustcrypto::{BrokerResponder, ClientOffer};
use lwa_core::{ConnectContext, Crypto, Psk, RustCrypto};
use rand_core::{CryptoRng, RngCore};

/// Bytes of heap: offer, connect context, response, AAD buffers and records.
const HEAP_SIZE: usize = 4096;

/// A bump allocator over a static arena; it never frees, which a run that
/// does one handshake and two records can afford.
struct BumpHeap {
    arena: UnsafeCell<[u8; HEAP_SIZE]>,
    used: AtomicUsize,
}

// SAFETY: `used` hands out disjoint ranges of the arena (compare-exchange).
#[allow(unsafe_code)]
unsafe impl Sync for BumpHeap {}

// SAFETY: every returned pointer is aligned as asked, inside the arena, and
// never handed out twice; null when the arena is exhausted.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for BumpHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.get() as usize;
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let start = (base + used + layout.align() - 1) & !(layout.align() - 1);
            let end = start - base + layout.size();
            if end > HEAP_SIZE {
                return core::ptr::null_mut();
            }
            match self
                .used
                .compare_exchange(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return start as *mut u8,
                Err(now) => used = now,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: BumpHeap = BumpHeap {
    arena: UnsafeCell::new([0; HEAP_SIZE]),
    used: AtomicUsize::new(0),
};

/// SHA-256 in counter mode over a seed: the device's TRNG seed would go in
/// here (a stand-in that adds no code: SHA-256 is linked anyway).
struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            self.counter += 1;
            let block = RustCrypto::sha256(&[&self.seed, &self.counter.to_be_bytes()]);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}

const IDENTITY: &str = "sensor-01";

/// Handshake, then one record each way; the number of bytes that came back right.
fn run(seed: [u8; 32]) -> Result<usize, lwa_core::LwaError> {
    let psk = Psk::new(black_box([0x42; 32]));
    let context = ConnectContext::new("client-1", true);
    let mut client_rng = SeededRng { seed, counter: 0 };
    let mut broker_rng = SeededRng {
        seed,
        counter: 1 << 32,
    };

    let offer = ClientOffer::new(IDENTITY, &psk, &context, 16, &mut client_rng)?;
    let responder = BrokerResponder::new(16)?;
    let (awaiting, response) = responder.respond(
        black_box(&offer.offer_bytes),
        &context,
        false,
        |id| (id == IDENTITY).then(|| psk.clone()),
        &mut broker_rng,
    )?;
    let (finished, mut client) = offer
        .awaiting_response
        .on_response(black_box(&response), false)?;
    let mut broker = awaiting.on_finished(black_box(&finished.finished_bytes))?;

    // Records in place in caller buffers: 30 bytes of reading + 16 of tag.
    let mut up = [0u8; 46];
    up[..30].copy_from_slice(b"{\"t\":21.5,\"h\":40,\"id\":\"s-01\"}\n");
    let tag = client
        .sealer
        .seal_in_place("sensors/1", 1, false, &mut up[..30])?;
    up[30..].copy_from_slice(&tag);
    let opened = broker
        .opener
        .open_in_place("sensors/1", 1, false, black_box(&mut up))?
        .len();

    let mut down = [0u8; 18];
    down[..2].copy_from_slice(b"on");
    let tag = broker
        .sealer
        .seal_in_place("cmd/1", 0, false, &mut down[..2])?;
    down[2..].copy_from_slice(&tag);
    let back = client
        .opener
        .open_in_place("cmd/1", 0, false, black_box(&mut down))?
        .len();
    Ok(opened + back)
}

/// The entry symbol the linker starts from.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let result = run(black_box([7; 32]));
    black_box(&result);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
