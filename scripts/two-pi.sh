#!/usr/bin/env bash
# The two-Pi experiment (broker on Pi A, clients on Pi B) in three steps; the
# measuring is `mqtt-lwa experiment serve` and `mqtt-lwa experiment --remote`,
# this script only fixes the order, the directory and the arguments.
#
#   on A:  scripts/two-pi.sh broker A_ADDRESS [SERVE ARGS...]
#            serves every mode and an iperf3 server (if iperf3 is installed)
#            until Ctrl-C/SIGTERM; A_ADDRESS is the address B reaches A by (it
#            goes into the broker certificate)
#   on B:  scripts/two-pi.sh copy A_ADDRESS     credentials + serve.json from A (scp)
#          scripts/two-pi.sh client A_ADDRESS [EXPERIMENT ARGS...]
#            e.g. --profile full; the report lands in experiments/results/<run>/
#            (link remote:A_ADDRESS: iperf3 both ways and MQTT round trips first;
#            apt-get install iperf3 on both Pis, or the capacity is not measured)
#
# Environment: MQTT_LWA  the binary (default target/release/mqtt-lwa, else PATH)
#              LWA_DIR   credentials directory on both sides (default ~/lwa-serve)
#              PI_USER   user for `copy` (default: ssh's default)
#              BIND      address A listens on (default 0.0.0.0)
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

cd "$(dirname "$0")/.."
BIN=${MQTT_LWA:-target/release/mqtt-lwa}
[ -x "$BIN" ] || BIN=$(command -v mqtt-lwa || true)
DIR=${LWA_DIR:-$HOME/lwa-serve}

[ $# -ge 2 ] || usage
cmd=$1 host=$2
shift 2
need_bin() {
    [ -n "$BIN" ] && [ -x "$BIN" ] || {
        echo "two-pi: no mqtt-lwa binary (cargo build --release, or set MQTT_LWA)" >&2
        exit 1
    }
}
case $cmd in
broker)
    need_bin
    # exec: a SIGTERM to this script reaches serve, which stops its brokers.
    exec "$BIN" experiment serve --dir "$DIR" --bind "${BIND:-0.0.0.0}" --name "$host" "$@"
    ;;
copy)
    # serve keeps its files in A's LWA_DIR; the same path on B, relative to home.
    src=${LWA_DIR:-lwa-serve}
    mkdir -p "$(dirname "$DIR")"
    exec scp -r "${PI_USER:+$PI_USER@}$host:$src" "$DIR"
    ;;
client)
    need_bin
    [ -f "$DIR/serve.json" ] || { echo "two-pi: no $DIR/serve.json: run '$0 copy $host' first" >&2; exit 1; }
    exec "$BIN" experiment --remote "$host" --dir "$DIR" "$@"
    ;;
*) usage ;;
esac
