#!/usr/bin/env bash
# Benchmarks P2–P6 (see docs/benchmarks.md); `make bench` runs them all.
#
#   scripts/bench.sh                 P2 to P6 (about 7 to 10 minutes)
#   scripts/bench.sh p2 p4           only those
#   scripts/bench.sh --quick p5      shorter runs, fewer events: a smoke check
#   scripts/bench.sh p1              the RFM batch, P1 and P1b (about 30 minutes;
#                                    tests.benchmarks.rfm, run last, wipes rows)
#
# Servers named in DATABASE_URL, REDIS_URL and KAFKA_BROKER are used as they
# are (the benchmarks write and delete data there); the missing ones are
# started on free loopback ports in a throw-away folder and destroyed
# afterwards. ccweb runs with production settings (DEBUG off) and throw-away
# keys. PEER_DIR points at the peer (default ../shared/peers/fastapi_seed).
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
  esac
done

# P1 has its own program; the others share one run of tests.benchmarks.
quick=()
serving=()
rfm=false
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    p1 | P1 | p1b | P1b | P1B) rfm=true ;;
    *) serving+=("$arg") ;;
  esac
done

if [[ ! -x .venv/bin/python ]]; then
  echo "bench: .venv is missing; run \`make bench\`, which creates it" >&2
  exit 2
fi

if ! command -v wrk >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "bench: installing wrk with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wrk >/dev/null
  else
    echo "bench: wrk is missing: apt-get install wrk" >&2
    exit 2
  fi
fi

started=$(date +%s)
work_dir=$(mktemp -d -t ccweb-bench.XXXXXX)
# PostgreSQL runs as the postgres user, which must reach its data folder.
chmod 755 "$work_dir"
state_dir="$work_dir/services"
cleanup() {
  python3 scripts/services.py destroy --dir "$state_dir" || true
  rm -rf "$work_dir"
}
trap cleanup EXIT

python3 scripts/services.py start --missing --dir "$state_dir"
while IFS='=' read -r key value; do
  # Servers given in the environment win over the ones started here.
  if [[ -z "${!key:-}" ]]; then export "$key=$value"; fi
done < "$state_dir/env"
echo "bench: services ready after $(( $(date +%s) - started ))s" >&2

# Production settings, with keys that live only as long as this run.
random_key() { .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))'; }
export DEBUG=false
export SECRET_KEY="${BENCH_SECRET_KEY:-$(random_key)}"
export JWT_SECRET="${BENCH_JWT_SECRET:-$(random_key)}"
export ALLOWED_HOSTS=127.0.0.1,localhost
export SECURE_SSL_REDIRECT=false
# Tokens are minted once at the start and must outlive the whole run.
export JWT_ACCESS_MINUTES=240
export KAFKA_TOPIC_USER_ACTIONS="${KAFKA_TOPIC_USER_ACTIONS:-bench_user_actions_$(date +%s)_$$}"
export BENCH_WORK_DIR="$work_dir"
if [[ -n "${MAKELEVEL:-}" && $# -eq 0 ]]; then
  export BENCH_COMMAND="${BENCH_COMMAND:-make bench}"
else
  export BENCH_COMMAND="${BENCH_COMMAND:-scripts/bench.sh${*:+ $*}}"
fi
unset CCWEB_TESTING

.venv/bin/python manage.py migrate --no-input >/dev/null
status=0
if [[ ${#serving[@]} -gt 0 || $rfm == false ]]; then
  .venv/bin/python -m tests.benchmarks "${quick[@]}" "${serving[@]}" || status=$?
fi
if [[ $rfm == true ]]; then
  .venv/bin/python -m tests.benchmarks.rfm "${quick[@]}" || status=$?
fi
echo "bench: done after $(( $(date +%s) - started ))s; results in docs/benchmarks.md" >&2
exit "$status"
