#!/usr/bin/env bash
# The main job: installs what is needed, builds mqtt-lwa, starts one broker
# with a listener per security mode, and runs a publish/subscribe round trip
# in every mode (plaintext, username/password + ACL, TLS, mutual TLS, LWA),
# then the quick experiment profile (report under experiments/results/).
# Everything runs on 127.0.0.1.
#
#   ./scripts/demo.sh            # ports 1883 (plain), 1884 (password), 8883 (tls),
#                                # 8884 (mutual tls), 1885 (lwa)
#   DEMO_BASE_PORT=20000 ./scripts/demo.sh   # use 20000..20004 instead
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
echo "demo: building (release: the experiment at the end measures this binary)"
cargo build --release --quiet
BIN="$PWD/target/release/mqtt-lwa"

WORK=$(mktemp -d)
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${DEMO_BASE_PORT:-}" ]; then
  P_PLAIN=$DEMO_BASE_PORT; P_PASS=$((DEMO_BASE_PORT + 1)); P_TLS=$((DEMO_BASE_PORT + 2))
  P_MTLS=$((DEMO_BASE_PORT + 3)); P_LWA=$((DEMO_BASE_PORT + 4))
else
  P_PLAIN=1883; P_PASS=1884; P_TLS=8883; P_MTLS=8884; P_LWA=1885
fi

echo "demo: credentials in $WORK"
"$BIN" certs init "$WORK/certs" --client alice >/dev/null
"$BIN" passwd -c -b "$WORK/passwd" alice alice-secret
# Every listener but LWA's has an ACL that keeps its clients off demo/lwa:
# without one they would read LWA payloads in clear and inject messages LWA
# subscribers get sealed (the broker warns at start-up; see README
# "Security defaults and what each listener exposes").
cat >"$WORK/acl" <<'EOF'
user alice
topic readwrite demo/password
topic readwrite demo/mtls
EOF
cat >"$WORK/acl-anonymous" <<'EOF'
# rules before any `user` line apply to anonymous clients
topic readwrite demo/plain
topic readwrite demo/tls
EOF
"$BIN" psk add "$WORK/psk" sensor-1 --key-out "$WORK/sensor-1.key" >/dev/null

cat >"$WORK/broker.toml" <<EOF
sys_interval_secs = 5

[[listener]]
name = "plain"
bind = "127.0.0.1:$P_PLAIN"
allow_anonymous = true
acl_file = "$WORK/acl-anonymous"

[[listener]]
name = "password"
bind = "127.0.0.1:$P_PASS"
allow_anonymous = false
password_file = "$WORK/passwd"
acl_file = "$WORK/acl"

[[listener]]
name = "tls"
bind = "127.0.0.1:$P_TLS"
mode = "tls"
allow_anonymous = true
acl_file = "$WORK/acl-anonymous"
[listener.tls]
certfile = "$WORK/certs/broker.crt"
keyfile = "$WORK/certs/broker.key"

[[listener]]
name = "mtls"
bind = "127.0.0.1:$P_MTLS"
mode = "tls"
acl_file = "$WORK/acl"
[listener.tls]
certfile = "$WORK/certs/broker.crt"
keyfile = "$WORK/certs/broker.key"
cafile = "$WORK/certs/ca.crt"
require_certificate = true
use_identity_as_username = true

[[listener]]
name = "lwa"
bind = "127.0.0.1:$P_LWA"
allow_anonymous = false
lwa_psk_file = "$WORK/psk"
EOF

echo "demo: starting the broker"
"$BIN" broker -c "$WORK/broker.toml" >"$WORK/broker.out" 2>"$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 1 100); do
  [ "$(grep -c '^listening on' "$WORK/broker.out" 2>/dev/null || true)" -ge 5 ] && break
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then cat "$WORK/broker.log" >&2; exit 1; fi
  sleep 0.1
done
sed 's/^/  broker: /' "$WORK/broker.out"

failures=0
# round_trip NAME PORT ARGS...: a subscriber waits for one message, a publisher sends it.
round_trip() {
  local name=$1 port=$2; shift 2
  local msg="hello over $name"
  "$BIN" sub -p "$port" -t "demo/$name" -C 1 -W 10 -q 1 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local sub=$!
  # The subscriber is ready once the broker has its subscription: retry the
  # publish until the subscriber has printed the message or 5 s have passed.
  for _ in $(seq 1 50); do
    "$BIN" pub -p "$port" -t "demo/$name" -m "$msg" -q 1 "$@" 2>>"$WORK/$name.err" || true
    if grep -qx "$msg" "$WORK/$name.out" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if wait "$sub" && grep -qx "$msg" "$WORK/$name.out"; then
    printf '  %-9s ok    (%s)\n' "$name" "$msg"
  else
    printf '  %-9s FAILED\n' "$name"; sed 's/^/    /' "$WORK/$name.err"; failures=$((failures + 1))
  fi
}

echo "demo: one QoS 1 message through each mode"
round_trip plain "$P_PLAIN"
round_trip password "$P_PASS" -u alice -P alice-secret
round_trip tls "$P_TLS" --cafile "$WORK/certs/ca.crt"
round_trip mtls "$P_MTLS" --cafile "$WORK/certs/ca.crt" --cert "$WORK/certs/alice.crt" --key "$WORK/certs/alice.key"
round_trip lwa "$P_LWA" -V 5 --lwa-id sensor-1 --lwa-key "$WORK/sensor-1.key"

echo "demo: a wrong password is refused"
if "$BIN" pub -p "$P_PASS" -t demo/password -m x -u alice -P wrong 2>"$WORK/wrong.err"; then
  echo "  wrong password was accepted"; failures=$((failures + 1))
else
  sed 's/^/  /' "$WORK/wrong.err"
fi

if [ "$failures" -ne 0 ]; then echo "demo: $failures mode(s) failed"; exit 1; fi
echo "demo: all modes ok"
kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""

# What each mode costs: the quick experiment profile (every mode, our broker
# and Debian's mosquitto side by side, on free loopback ports; 1-2 minutes).
if [ "${DEMO_SKIP_EXPERIMENT:-0}" != 1 ]; then
  echo "demo: quick experiment profile (every mode, our broker and mosquitto side by side)"
  run_dir=$("$BIN" experiment --profile quick)
  echo "demo: report in $run_dir/report.md"
fi
