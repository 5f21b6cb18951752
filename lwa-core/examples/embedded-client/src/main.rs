//! A bare-metal LWA1 client: handshake with an in-process broker (both
//! sides of lwa-core, RustCrypto backend), then one record sealed by the
//! client and opened by the broker, and one the other way.
//!
//! It exists to be linked for `thumbv7em-none-eabihf` and measured
//! (scripts/embedded-check.sh prints its sections; lwa-core/README.md has
//! the table). With the feature `qemu` it also boots on QEMU's `mps2-an386`
//! (a Cortex-M4 board): a vector table, a linker script (`qemu.ld`, from
//! build.rs), the FPU switched on, and an exit through Arm semihosting whose
//! status says whether every record came back; `LWA_QEMU_OPS` (at build time)
//! picks what it runs, so that scripts/embedded-check.sh `--count` can count
//! instructions per handshake and per record pair by difference. A device
//! would put its TRNG seed, its MQTT transport and a real heap where this file
//! has stand-ins.
//!
//! The `unsafe` items are the board glue every bare-metal binary has (an
//! entry symbol, a global allocator; under `qemu` the vector table, one
//! register write and the semihosting call); lwa-core itself forbids unsafe
//! code.

#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::hint::black_box;
#[cfg(not(feature = "qemu"))]
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

/// What `run` does: 0 nothing, 1 the handshake, 2 the handshake and one record each way;
/// 3 and 4 the same with LWA2 (finished path). The flash and RAM build runs 2.
const OPS: u8 = match option_env!("LWA_QEMU_OPS") {
    Some(ops) => match ops.as_bytes() {
        b"none" => 0,
        b"handshake" => 1,
        b"handshake2" => 3,
        b"all2" => 4,
        _ => 2,
    },
    None => 2,
};

/// Handshake, then one record each way (as far as `OPS` says); the number of bytes that
/// came back right (30 + 2 = 32 for both records, 0 when `OPS` stops before them).
fn run(seed: [u8; 32]) -> Result<usize, lwa_core::LwaError> {
    if OPS == 0 {
        return Ok(0);
    }
    if OPS >= 3 {
        return run_lwa2(seed);
    }
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
    if OPS == 1 {
        black_box((&mut client, &mut broker));
        return Ok(0);
    }

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

/// `run` with LWA2 (protocol-spec/LWA2.md): BLAKE3 instead of SHA-256, the finished path.
fn run_lwa2(seed: [u8; 32]) -> Result<usize, lwa_core::LwaError> {
    use lwa_core::lwa2::{BrokerResponder, ClientOffer};
    let psk = Psk::new(black_box([0x42; 32]));
    let context = ConnectContext::new("client-1", true);
    let mut client_rng = SeededRng { seed, counter: 0 };
    let mut broker_rng = SeededRng {
        seed,
        counter: 1 << 32,
    };
    let offer: ClientOffer = ClientOffer::new(IDENTITY, &psk, &context, 16, &mut client_rng)?;
    let responder: BrokerResponder = BrokerResponder::new(16)?;
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
    if OPS == 3 {
        black_box((&mut client, &mut broker));
        return Ok(0);
    }
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

/// The entry symbol the linker starts from (without `qemu`).
#[cfg(not(feature = "qemu"))]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let result = run(black_box([7; 32]));
    black_box(&result);
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(not(feature = "qemu"))]
#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// QEMU `mps2-an386` (Cortex-M4F): boot, run, exit with a status.
#[cfg(feature = "qemu")]
#[allow(unsafe_code)]
mod qemu {
    use core::hint::black_box;
    use core::panic::PanicInfo;

    extern "C" {
        /// The top of RAM, from qemu.ld.
        static _stack_top: u8;
    }

    /// The first two words of the vector table: initial stack pointer, reset handler.
    #[repr(C)]
    pub struct Vectors {
        stack_top: *const u8,
        reset: extern "C" fn() -> !,
    }

    // SAFETY: read-only data the core reads at reset; never written.
    unsafe impl Sync for Vectors {}

    #[link_section = ".vector_table"]
    #[no_mangle]
    #[used]
    static VECTORS: Vectors = Vectors {
        // Only the address of the linker symbol is taken (no unsafe needed for that).
        stack_top: &raw const _stack_top,
        reset,
    };

    /// Arm semihosting SYS_EXIT: `ADP_Stopped_ApplicationExit` (QEMU exits with status 0)
    /// or `ADP_Stopped_RunTimeErrorUnknown` (status 1).
    fn exit(ok: bool) -> ! {
        let reason: u32 = if ok { 0x2_0026 } else { 0x2_0023 };
        // SAFETY: `bkpt 0xab` with r0 = 0x18 is the semihosting exit call; QEMU (run with
        // `-semihosting`) ends the machine there and the code after it never runs.
        unsafe {
            core::arch::asm!("bkpt 0xab", in("r0") 0x18u32, in("r1") reason, options(nostack));
        }
        loop {
            core::hint::spin_loop();
        }
    }

    extern "C" fn reset() -> ! {
        // SAFETY: CPACR (0xE000ED88), Cortex-M4's coprocessor access register: full access
        // to CP10 and CP11, the FPU this hard-float target's code may use.
        unsafe {
            let cpacr = 0xE000_ED88 as *mut u32;
            core::ptr::write_volatile(cpacr, core::ptr::read_volatile(cpacr) | (0xF << 20));
            core::arch::asm!("dsb", "isb", options(nostack));
        }
        let result = super::run(black_box([7; 32]));
        let expected = if matches!(super::OPS, 2 | 4) { 32 } else { 0 };
        exit(matches!(result, Ok(n) if n == expected))
    }

    #[panic_handler]
    fn panic(_info: &PanicInfo) -> ! {
        exit(false)
    }
}
