#!/bin/sh
# A scripted agent: works a little, reports its stage with a marker, then waits at a prompt.
# Everything typed into it is logged, so a test can prove nothing was.
log="$1"
printf 'agent: working on the change\n'
sleep 0.5
printf '  ⎿ edited src/app.py\n'
printf '### SENTRY {"type":"STATUS","stage":"code","ok":true,"msg":"ready"}\n'
while :; do
  printf '> '
  read -r line || exit 0
  printf '%s\n' "$line" >> "$log"
done
