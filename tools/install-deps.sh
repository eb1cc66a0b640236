#!/usr/bin/env bash
# Installs the Debian packages zshare builds, tests and benchmarks with.
# Idempotent: checks first, runs apt-get update only when something is missing; sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcli11-dev catch2 libsqlite3-dev libssl-dev nlohmann-json3-dev
  libpq-dev postgresql  # the broker on PostgreSQL; the tests start throw-away clusters (tests/pylib/pg_cluster.py)
  libedit-dev
  gsoap libgsoap-dev libtirpc-dev rpcsvc-proto rpcbind
  python3 python3-zmq python3-msgpack python3-zeep
  help2man
  nftables iproute2 tcpdump socat  # the network-namespace NAT lab of the tests (tests/pylib/nat_lab.py)
)

# Callers may ask for more (make fuzz: clang and its runtime).
read -r -a extra <<<"${EXTRA_PACKAGES:-}"
PACKAGES+=("${extra[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
