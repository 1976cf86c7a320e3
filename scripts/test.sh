#!/usr/bin/env bash
# The whole test suite against real PostgreSQL, Redis and Kafka.
#
# Servers named in DATABASE_URL, REDIS_URL and KAFKA_BROKER are used as they
# are; the missing ones are started on free loopback ports in a throw-away
# folder and stopped afterwards. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
state_dir=$(mktemp -d /tmp/ccweb-test-services.XXXXXX)
# PostgreSQL runs as the postgres user, which must reach its data folder.
chmod 755 "$state_dir"
export CCWEB_SERVICES_DIR="$state_dir"
cleanup() { python3 scripts/services.py destroy --dir "$state_dir" || true; }
trap cleanup EXIT

python3 scripts/services.py start --missing --dir "$state_dir"
while IFS='=' read -r key value; do
  # Servers given in the environment win over the ones started here.
  if [[ -z "${!key:-}" ]]; then export "$key=$value"; fi
done < "$state_dir/env"
echo "test: services ready after $(( $(date +%s) - started ))s"

export CCWEB_TESTING=1
# Each run publishes to its own topic, so runs sharing a broker stay apart.
export KAFKA_TOPIC_USER_ACTIONS="${KAFKA_TOPIC_USER_ACTIONS:-test_user_actions_$(date +%s)_$$}"
.venv/bin/python -m pytest "$@"
