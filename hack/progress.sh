#!/usr/bin/env bash
# progress.sh LABEL COMMAND...: runs COMMAND and, while it runs, prints a
# line every 30 s saying so. A cold `go build` compiles for minutes without
# a word, and a newcomer cannot tell a build from a hang.
set -uo pipefail
label=$1
shift
echo "$*"
start=$(date +%s)
"$@" &
pid=$!
(
  while sleep 30; do
    echo "$label: still working ($(($(date +%s) - start)) s)"
  done
) &
ticker=$!
wait "$pid"
rc=$?
kill "$ticker" 2>/dev/null
wait "$ticker" 2>/dev/null
exit "$rc"
