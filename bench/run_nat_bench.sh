#!/bin/sh
# run_nat_bench.sh: issue 13's figures in the NAT lab (bench/nat_bench.py): direct vs reverse, relay vs a socat
# forwarder, the forwarder's CPU per GiB, setup time. Needs root, iproute2, nftables and socat (make deps).
# SIZE_MIB (default 256) and REPS (default 3); ZSHARE_BUILD names the build tree (default build-release,
# made with `make bench-broker`'s configuration when missing).
set -eu
cd "$(dirname "$0")/.."
BUILD=${ZSHARE_BUILD:-build-release}
if [ ! -x "$BUILD/relay/zshare-relay" ] || [ ! -x "$BUILD/peer/zshare-peer" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target zshare-broker zshare-peer zshare-relay
fi
exec /usr/bin/python3 bench/nat_bench.py --broker-bin "$BUILD/broker/zshare-broker" --peer-bin "$BUILD/peer/zshare-peer" \
  --relay-bin "$BUILD/relay/zshare-relay" --size-mib "${SIZE_MIB:-256}" --reps "${REPS:-3}"
