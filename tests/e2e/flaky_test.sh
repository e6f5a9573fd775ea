#!/bin/sh
# Fails on its first run, passes on the second: a retry in the pipeline makes it green.
count_file="$1"
n=$(cat "$count_file" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$count_file"
if [ "$n" -eq 1 ]; then echo "1 failed, 3 passed"; exit 1; fi
echo "4 passed"
