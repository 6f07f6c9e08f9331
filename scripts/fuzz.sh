#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a few seconds each (default 5s).
# Usage: scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    found=$((found + 1))
    echo "fuzz $pkg $target (${secs}s)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" "$pkg" >/tmp/pbxfleet-fuzz.log 2>&1 || {
      cat /tmp/pbxfleet-fuzz.log
      echo "fuzz target $target in $pkg failed; the crasher is in $pkg's testdata/fuzz: make it a regression test" >&2
      exit 1
    }
  done
done
echo "fuzz: $found targets ran ${secs}s each without a crash"
