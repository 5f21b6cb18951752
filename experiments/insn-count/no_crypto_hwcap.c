/*
 * Guest-side LD_PRELOAD shim for experiments/insn-count/run.sh: makes an
 * aarch64 program under qemu-user see the HWCAP of a core WITHOUT the ARMv8
 * crypto extensions, as on the Raspberry Pi 3 (BCM2837) and Pi 4 (BCM2711).
 *
 * qemu 7.2 offers no CPU property to switch the crypto extensions off, and
 * every aarch64 model it has (cortex-a35/a53/a57/a72/a76, neoverse-n1, a64fx,
 * max) reports AES, PMULL, SHA1 and SHA2. The emulated core can still execute
 * those instructions, but software only uses them after asking: ring
 * (cpu/arm/linux.rs), RustCrypto's cpufeatures and Rust's std_detect all call
 * glibc's getauxval(AT_HWCAP). This shim interposes getauxval and clears the
 * crypto bits, so they choose their software (NEON or scalar) code, as they
 * would on a Pi. glibc itself reads the auxiliary vector directly and is
 * unaffected (its string-function selection does not look at crypto bits).
 *
 * Build: aarch64-linux-gnu-gcc -shared -fPIC -O2 -o no_crypto_hwcap.so no_crypto_hwcap.c
 * Use:   qemu-aarch64 -cpu cortex-a53 -E LD_PRELOAD=/abs/no_crypto_hwcap.so PROGRAM ARGS
 * (qemu's -E sets the guest's environment only; the host's LD_PRELOAD would
 * reach qemu itself.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/auxv.h>

/* The crypto bits of Linux's arm64 HWCAP and HWCAP2 (glibc's bits/hwcap.h names them). */
#define HWCAP_CRYPTO_BITS                                                                        \
    ((unsigned long)(HWCAP_AES | HWCAP_PMULL | HWCAP_SHA1 | HWCAP_SHA2 | HWCAP_SHA3 |           \
                     HWCAP_SM3 | HWCAP_SM4 | HWCAP_SHA512))
#define HWCAP2_CRYPTO_BITS                                                                       \
    ((unsigned long)(HWCAP2_SVEAES | HWCAP2_SVEPMULL | HWCAP2_SVESHA3 | HWCAP2_SVESM4))

unsigned long getauxval(unsigned long type)
{
    static unsigned long (*real)(unsigned long);
    if (!real) {
        real = (unsigned long (*)(unsigned long))dlsym(RTLD_NEXT, "getauxval");
    }
    unsigned long value = real ? real(type) : 0;
    if (type == AT_HWCAP) {
        value &= ~HWCAP_CRYPTO_BITS;
    } else if (type == AT_HWCAP2) {
        value &= ~HWCAP2_CRYPTO_BITS;
    }
    return value;
}
