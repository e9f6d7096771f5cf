#!/usr/bin/env python3
"""expect-exit.py CODE CMD...: runs CMD, passing its output through, and
succeeds only if it exits with exactly CODE (a crash is never CODE).

lit's internal shell has no $?; `not` accepts any non-zero status. Octet's
tools promise exit code 1 for bad input, and this pins it."""
import subprocess
import sys

want = int(sys.argv[1])
proc = subprocess.run(sys.argv[2:])
if proc.returncode != want:
    sys.stderr.write("expect-exit: '%s' exited with %d, expected %d\n"
                     % (" ".join(sys.argv[2:]), proc.returncode, want))
    sys.exit(1)
