#!/usr/bin/env bash
# Runs every target for FUZZ_SECONDS (default 300) each, one at a time,
# niced, new inputs kept under target/fuzz-corpus/<target> (the seeds in
# corpus/<target> are read, never written). Logs go to FUZZ_LOGS.
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-300}
logs=${FUZZ_LOGS:-target/fuzz-logs}
mkdir -p "$logs"
targets=${*:-$(cargo +nightly fuzz list)}
for target in $targets; do
    work=target/fuzz-corpus/$target
    mkdir -p "$work"
    nice -n 10 cargo +nightly fuzz run -a "$target" "$work" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        > "$logs/$target.log" 2>&1
    echo "$target exit $? corpus $(ls "$work" | wc -l)" >> "$logs/summary.txt"
done
