#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a fixed number of executions each
# (default 20000). Usage: scripts/fuzz.sh [executions]
#
# Why a count and not a duration: with a duration (-fuzztime 5s) Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when the
# wall-clock deadline races a worker that is mid-execution (go.dev/issue/75804,
# fixed in Go 1.27). A count has no deadline to race; on a slow machine it just
# takes longer. A real finding still fails the run: Go writes the input that
# broke the target to testdata/fuzz/<target>/ and we print where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
execs="${1:-20000}"
case "$execs" in
  *[!0-9]*|'') echo "fuzz.sh: the budget is a number of executions, got '$execs'" >&2; exit 2 ;;
esac
log="$(mktemp -t pbxfleet-fuzz.XXXXXX)"
trap 'rm -f "$log"' EXIT
found=0
# Targets are found by reading the test files rather than by `go test -list`,
# which would compile the tests of every package just to list them.
for file in $(git ls-files --cached --others --exclude-standard '*_test.go' 2>/dev/null || find . -name '*_test.go'); do
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
    pkg="./$(dirname "$file")"
    found=$((found + 1))
    dir="$(dirname "$file")/testdata/fuzz/$target"
    before="$(ls "$dir" 2>/dev/null | sort || true)"
    echo "fuzz $pkg $target (${execs} executions)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "${execs}x" -timeout 10m "$pkg" >"$log" 2>&1; then
      cat "$log"
      after="$(ls "$dir" 2>/dev/null | sort || true)"
      new="$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)"
      if [ -n "$new" ]; then
        echo "fuzz target $target in $pkg failed on an input Go saved as $dir/$new: keep that file (it is now a regression test) and fix the code" >&2
      else
        echo "fuzz target $target in $pkg failed without saving an input: read the output above" >&2
      fi
      exit 1
    fi
  done
done
echo "fuzz: $found targets ran ${execs} executions each without a failure"
