#!/usr/bin/env bash
# Prints the README's result row of each fuzz log in FUZZ_LOGS: seconds
# run, inputs executed, corpus size at the end, crashes (the inputs
# libFuzzer left under artifacts/<target>: crash-, oom-, timeout-, leak-).
cd "$(dirname "$0")"
logs=${FUZZ_LOGS:-target/fuzz-logs}
for log in "$logs"/*.log; do
    target=$(basename "$log" .log)
    seconds=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9]* second' | grep -o '[0-9]*')
    runs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "| \`$target\` | ${seconds:-?} | ${runs:-?} | ${corpus:-?} | $crashes | \`./run-all.sh $target\` |"
done
