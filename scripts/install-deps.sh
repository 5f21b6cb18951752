#!/usr/bin/env bash
# Installs every tool the demo and the test suite need on a fresh Debian machine
# with the Rust toolchain: libssl-dev and pkg-config (the experiment's OpenSSL client for
# TLS with an external PSK, cargo feature `tls-psk`; `--build` installs only these two,
# which cargo needs before it compiles), Debian's mosquitto broker and clients (interop peers),
# tshark (the experiment's capture cross-check), iproute2 (network namespaces), iperf3 (capacity of the
# experiment's emulated links), iptables (their NFQUEUE delay line where the kernel
# has no netem), openssl (s_client as a TLS 1.1-only client in tests/modes_tls.rs),
# qemu-system-arm (lwa-core's bare-metal example run on an emulated Cortex-M4,
# scripts/embedded-check.sh --run), rabbitmq-server (a real two-node MQTT cluster on
# loopback as the upstream of the gateway's cluster tests, tests/cli_support/rabbitmq.rs), and the Python packages
# of the interop tests and the independent LWA1 and LWA2 implementations (cryptography, blake3).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need_apt=()
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
if [ "${1:-}" = --build ]; then
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${need_apt[*]}"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
  fi
  echo "install-deps: build dependencies ok"
  exit 0
fi
for pair in mosquitto:mosquitto mosquitto_pub:mosquitto-clients ip:iproute2 iperf3:iperf3 iptables:iptables python3:python3 openssl:openssl tshark:tshark qemu-system-arm:qemu-system-arm rabbitmq-server:rabbitmq-server; do
  bin=${pair%%:*}; pkg=${pair##*:}
  if [ "$bin" = mosquitto ]; then
    [ -x /usr/sbin/mosquitto ] || need_apt+=("$pkg")
  elif [ "$bin" = rabbitmq-server ]; then
    [ -x /usr/sbin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=("$pkg")
  else
    command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
  fi
done
# The experiment's plots (and the re-render test) draw text with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  # wireshark-common asks whether non-root users may capture; answer no (the
  # experiment's tshark cross-check runs as root, as the test suite does).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian's mosquitto package starts a system broker on 1883; the tests start
# their own brokers on free ports, and the demo needs 1883 free.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop mosquitto 2>/dev/null || true; fi
# Only the system broker (started by the package with the system config):
# brokers that tests started for themselves must survive a second run of
# this script on the same machine.
if command -v service >/dev/null 2>&1; then $SUDO service mosquitto stop >/dev/null 2>&1 || true; fi
pkill -f '^/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf' 2>/dev/null || true
# Debian's rabbitmq-server package starts a system node (rabbit@HOSTNAME on 5672,
# 25672) and epmd on 4369; the gateway's cluster tests start their own nodes with a
# private epmd on a free port, so stop and disable the system node and its epmd.
# Only those (processes of the rabbitmq user): test nodes run as the test's user,
# named gwtest<pid>x<n>-<i>@localhost, and must survive a second run of this script.
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    $SUDO systemctl disable --now epmd.socket epmd.service >/dev/null 2>&1 || true
  fi
  # Without systemd (containers) the package's init script started it. Ask it to
  # stop only while the node runs: its stop runs rabbitmqctl, which starts an epmd.
  if pgrep -u rabbitmq -x beam.smp >/dev/null 2>&1 && command -v service >/dev/null 2>&1; then
    $SUDO service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
  $SUDO pkill -u rabbitmq -x beam.smp 2>/dev/null || true
  $SUDO pkill -u rabbitmq -x epmd 2>/dev/null || true
  if command -v update-rc.d >/dev/null 2>&1; then $SUDO update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true; fi
fi
python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/../tests/python/requirements.txt"
echo "install-deps: ok"
