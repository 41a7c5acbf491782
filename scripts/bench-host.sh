#!/usr/bin/env bash
# `make bench-host`: the host benchmark driver of rust/host (baselines in the
# same binary); prints `ratio <name> <value>` lines, writes out/bench-host.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$KVMRS_ROOT"
mkdir -p out
export KVMRS_BENCH_OUT=$KVMRS_ROOT/out/bench-host.json
(cd rust/host && cargo bench -q --bench rmap_age -- ${BENCH_ARGS:-})
