#!/usr/bin/env python3
"""passes-in-help.py HELP_FILE TD_FILE...: fails unless every pass defined in
the given Passes.td files (`Pass<"name"`) is listed in HELP_FILE (the output
of `octet-opt --help`) with its summary, so no pass can be left out."""
import re
import sys

help_text = open(sys.argv[1]).read()
missing = []
count = 0
for td in sys.argv[2:]:
    src = open(td).read()
    for m in re.finditer(r'def \w+\s*:\s*(?:Interface)?Pass<"([^"]+)"[^{]*\{\s*let summary = "([^"]*)"', src):
        count += 1
        name, summary = m.group(1), m.group(2)
        if not re.search(r"--%s\s+-\s+%s" % (re.escape(name), re.escape(summary)), help_text):
            missing.append(name)
if count == 0:
    sys.exit("passes-in-help: no pass definitions found in %s" % sys.argv[2:])
if missing:
    sys.exit("passes-in-help: not listed in --help: " + ", ".join(missing))
print("passes-in-help: all %d passes listed" % count)
