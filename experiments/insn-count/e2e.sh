# Sourced by experiments/insn-count/run.sh for `run.sh e2e [MODES] [EXTRA]`
# (it provides need_tools, build_helpers, qemu_cmd, WORK and PIDS): A64
# instructions per handshake and per message, per security mode, counted on
# the cross-built mqtt-lwa broker and clients, all real processes on 127.0.0.1.
#
#   MODES  comma-separated, from plain,lwa,tls13,mtls13,tls12 (default: plain,lwa,tls13)
#   EXTRA  how many more messages/connections the long runs have (default 100)
#   INSN_CPU=cortex-a53 (default), cortex-a72, cortex-a53-nocrypto, ...
#   CROSS_PROFILE=dev ...   count the debug build instead of release (not a cost model)
#
# Three runs per mode, each with a broker, one subscriber (sub -C) and
# publishers, QoS 1, 16-byte payload:
#   A: one publisher connection, 1 message
#   B: one publisher connection, 1 + EXTRA messages (pub --repeat)
#   C: 1 + EXTRA publisher connections, 1 message each
# broker per message = (B - A) / EXTRA, broker per connection = (C - B) / EXTRA
# (CONNECT/handshake, one PUBLISH's worth of nothing extra, DISCONNECT, session
# clean-up), publisher and subscriber per message = their (B - A) / EXTRA.
# The publisher process of run A, minus the same for plain, is what one
# connection of that mode costs the client over plaintext (key or certificate
# loading included: a client process connects once).
# Output: a Markdown table on stdout; raw counts in the log on stderr.

MODES=${1:-plain,lwa,tls13}
EXTRA=${2:-100}
PROFILE=${CROSS_PROFILE:-release}

need_tools
command -v ss >/dev/null || {
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q iproute2 >&2
}
# Without debug info (Cargo.toml's release profile has debug = 1): counts do not
# need it, and the build is smaller and quicker on the shared machine.
CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-0} CROSS_PROFILE=$PROFILE ./scripts/cross-aarch64.sh --bin >&2
case "$PROFILE" in dev) OUT=debug ;; *) OUT=$PROFILE ;; esac
BIN=${CROSS_TARGET_DIR:-$PWD/target/cross-aarch64}/aarch64-unknown-linux-gnu/$OUT/mqtt-lwa

build_helpers
mapfile -t QEMU < <(qemu_cmd "${INSN_CPU:-cortex-a53}")
# counted OUTFILE PROGRAM ARGS...: run under the counting plugin (foreground
# only: a background function would be a subshell, and SIGTERM must reach
# qemu itself for the guest broker to exit and the plugin to write its count).
counted() {
    local out=$1
    shift
    "${QEMU[@]}" -plugin "$WORK/libinsn_count.so,out=$out" "$@"
}

# Credentials for every mode, made once by the aarch64 binary itself.
"${QEMU[@]}" "$BIN" psk add "$WORK/psk" pi-sensor --key-out "$WORK/pi-sensor.key" >/dev/null
"${QEMU[@]}" "$BIN" certs init "$WORK/certs" --client pi-sensor >/dev/null
listener() {
    case "$1" in
        plain) printf '[[listener]]\nname = "plain"\nbind = "127.0.0.1:0"\nallow_anonymous = true\n' ;;
        lwa) printf '[[listener]]\nname = "lwa"\nbind = "127.0.0.1:0"\nallow_anonymous = false\nlwa_psk_file = "%s"\n' "$WORK/psk" ;;
        tls13 | tls12) printf '[[listener]]\nname = "tls"\nbind = "127.0.0.1:0"\nmode = "tls"\nallow_anonymous = true\n[listener.tls]\ncertfile = "%s"\nkeyfile = "%s"\n' \
            "$WORK/certs/broker.crt" "$WORK/certs/broker.key" ;;
        mtls13) printf '[[listener]]\nname = "mtls"\nbind = "127.0.0.1:0"\nmode = "tls"\nallow_anonymous = true\n[listener.tls]\ncertfile = "%s"\nkeyfile = "%s"\ncafile = "%s"\nrequire_certificate = true\n' \
            "$WORK/certs/broker.crt" "$WORK/certs/broker.key" "$WORK/certs/ca.crt" ;;
    esac
}
client_flags() {
    case "$1" in
        plain) ;;
        lwa) echo "--lwa-id pi-sensor --lwa-key $WORK/pi-sensor.key" ;;
        tls13) echo "--cafile $WORK/certs/ca.crt --tls-version tlsv1.3" ;;
        tls12) echo "--cafile $WORK/certs/ca.crt --tls-version tlsv1.2" ;;
        mtls13) echo "--cafile $WORK/certs/ca.crt --tls-version tlsv1.3 --cert $WORK/certs/pi-sensor.crt --key $WORK/certs/pi-sensor.key" ;;
    esac
}

# run MODE NAME CONNECTIONS MESSAGES_PER_CONNECTION: writes NAME.{broker,sub,pub}.
run() {
    local mode=$1 name=$2 conns=$3 per=$4
    local dir=$WORK/$mode-$name total=$(($3 * $4)) port bpid spid i
    mkdir -p "$dir"
    listener "$mode" >"$dir/broker.toml"
    # shellcheck disable=SC2046 # client_flags is a list of words
    set -- -h 127.0.0.1 -V 5 -q 1 $(client_flags "$mode")
    "${QEMU[@]}" -plugin "$WORK/libinsn_count.so,out=$dir/broker" "$BIN" broker -c "$dir/broker.toml" --sys-interval 0 >"$dir/broker.out" 2>"$dir/broker.err" &
    bpid=$!
    PIDS+=("$bpid")
    for _ in $(seq 1 600); do
        grep -q '^listening on' "$dir/broker.out" 2>/dev/null && break
        kill -0 "$bpid" 2>/dev/null || { cat "$dir/broker.err" >&2; return 1; }
        sleep 0.1
    done
    port=$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$dir/broker.out" | head -n1)
    "${QEMU[@]}" -plugin "$WORK/libinsn_count.so,out=$dir/sub" "$BIN" sub "$@" -p "$port" -t a64/icount -C "$total" -W 300 >"$dir/sub.out" 2>"$dir/sub.err" &
    spid=$!
    PIDS+=("$spid")
    # Readiness without touching the counted processes: wait for the
    # subscriber's TCP connection, then give it time to finish its handshake
    # and SUBSCRIBE. A message published too early is lost, and then the
    # subscriber times out and the run fails (it is never miscounted).
    for _ in $(seq 1 600); do
        [ -n "$(ss -tnH state established "( dport = :$port )")" ] && break
        sleep 0.1
    done
    sleep 3
    counted "$dir/pub" "$BIN" pub "$@" -p "$port" -t a64/icount -m 0123456789abcdef --repeat "$per" 2>"$dir/pub.err"
    for ((i = 1; i < conns; i++)); do
        "${QEMU[@]}" "$BIN" pub "$@" -p "$port" -t a64/icount -m 0123456789abcdef --repeat "$per" 2>>"$dir/pub.err"
    done
    wait "$spid" || { echo "$mode $name: subscriber got $(wc -l <"$dir/sub.out") of $total" >&2; return 1; }
    kill -TERM "$bpid"
    wait "$bpid" || true
    [ "$(wc -l <"$dir/sub.out")" -eq "$total" ] || { echo "$mode $name: wrong message count" >&2; return 1; }
    for p in broker sub pub; do
        [ -s "$dir/$p" ] || { echo "$mode $name: no count for $p" >&2; return 1; }
    done
    echo "$mode $name broker=$(cat "$dir/broker") sub=$(cat "$dir/sub") pub=$(cat "$dir/pub")" >&2
}

count() { cat "$WORK/$1-$2/$3"; }
per() { echo $(((($1) + EXTRA / 2) / EXTRA)); }

printf '| mode | broker per connection | broker per message | publisher per message | subscriber per message | publisher process, 1 message | client per connection over plain |\n'
printf '|---|---|---|---|---|---|---|\n'
plain_pub=""
IFS=, read -ra modes <<<"$MODES"
for mode in "${modes[@]}"; do
    run "$mode" A 1 1
    run "$mode" B 1 $((EXTRA + 1))
    run "$mode" C $((EXTRA + 1)) 1
    b_conn=$(per "$(count "$mode" C broker) - $(count "$mode" B broker)")
    b_msg=$(per "$(count "$mode" B broker) - $(count "$mode" A broker)")
    p_msg=$(per "$(count "$mode" B pub) - $(count "$mode" A pub)")
    s_msg=$(per "$(count "$mode" B sub) - $(count "$mode" A sub)")
    p_one=$(count "$mode" A pub)
    [ "$mode" = plain ] && plain_pub=$p_one
    over="n/a"
    [ -n "$plain_pub" ] && over=$((p_one - plain_pub))
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$mode" "$b_conn" "$b_msg" "$p_msg" "$s_msg" "$p_one" "$over"
done
