#!/usr/bin/env bash
# The original two side-by-side measurements, now part of the suite:
#
#   idle       10,000 idle keep-alive connections: bytes per connection
#   return200  `return 200` with a 1 KiB body, keep-alive, wrk -t1 -c50
#
# It runs benches/suite.sh with just those workloads and leaves docs/ alone
# (benches/suite.sh runs every workload and rewrites docs/benchmarks.md).
# Same settings as the suite: IDLE_CONNS, WRK_SECS, WRK_ROUNDS, SLUICE,
# NGINX; e.g. `IDLE_CONNS=2000 WRK_SECS=5 benches/compare.sh`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export WORKLOADS=${WORKLOADS:-"idle return200"}
export UPDATE_DOCS=${UPDATE_DOCS:-0}
exec "$here/suite.sh" "$@"
