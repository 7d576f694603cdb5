#!/usr/bin/env bash
# The whole test suite: starts the real servers the tests use (Kafka, Redis, PostgreSQL, FerretDB),
# builds, type-checks and runs every test file with node's test runner. Pass test files to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ]; then npm ci; fi
bash scripts/services.sh up
# The web UI's end-to-end test drives Debian's chromium through playwright-core.
command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
# shellcheck disable=SC1091
. .riffle/services.env
export RIFFLE_KAFKA_BROKERS RIFFLE_REDIS_URL RIFFLE_POSTGRES_URL RIFFLE_MONGODB_URL

npm run --silent build
npx tsc -p tsconfig.test.json
npx biome check . >/dev/null || { npx biome check .; exit 1; }

if [ "$#" -gt 0 ]; then files=("$@"); else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
exec node --import tsx --test --test-reporter=spec --test-timeout=300000 "${files[@]}"
