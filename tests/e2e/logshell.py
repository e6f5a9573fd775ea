"""A tiny shell for end-to-end tests: logs every line it receives, then runs it with sh.

It is a real program in a real tmux pane; the log is how a test proves a command reached the
pane exactly once.
"""

import os
import subprocess
import sys

log_path = sys.argv[1]
while True:
    sys.stdout.write("$ ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        break
    line = line.rstrip("\n")
    with open(log_path, "a") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())
    if line.strip():
        subprocess.call(line, shell=True)
