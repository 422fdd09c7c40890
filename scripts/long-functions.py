#!/usr/bin/env python3
"""Lists functions in crates/*/src longer than LIMIT lines (issue 12: a reader loses the thread).

A long function may stay when the comment block right above it (doc comment or `//`, before
its attributes) has a line starting `Long:` that says why, e.g. `// Long: one flat match of
the verbs; splitting it hides the table.` Those are listed as kept, not failed.

Usage: scripts/long-functions.py [--limit N] [--all] [paths...]   (default: crates/*/src, 120)
Exit status 1 when a long function has no reason above it.
"""
import os
import re
import sys

from rust_source import blank

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
FN = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"C\"\s+)?fn\s+(\w+)", re.M)


def functions(path):
    raw = open(path).read()
    code = blank(raw)
    lines = raw.split("\n")
    for m in FN.finditer(code):
        # The body: the first `{` after the signature (a `;` first means no body), to its match.
        i = m.end()
        while i < len(code) and code[i] not in "{;":
            i += 1
        if i >= len(code) or code[i] == ";":
            continue
        depth, j = 0, i
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        start = code.count("\n", 0, m.start()) + 1
        end = code.count("\n", 0, j) + 1
        yield m.group(1), start, end - start + 1, reason(lines, start)


def reason(lines, start):
    """The `Long:` line of the comment block above line `start` (1-based), attributes skipped."""
    k = start - 2
    while k >= 0 and lines[k].strip().startswith("#["):
        k -= 1
    while k >= 0 and lines[k].strip().startswith("//"):
        text = lines[k].strip().lstrip("/!").strip()
        if text.startswith("Long:"):
            return text
        k -= 1
    return None


def main(argv):
    limit, show_all, paths = 120, False, []
    args = iter(argv)
    for a in args:
        if a == "--limit":
            limit = int(next(args))
        elif a == "--all":
            show_all = True
        else:
            paths.append(a)
    if not paths:
        crates = os.path.join(ROOT, "crates")
        paths = [os.path.join(crates, c, "src") for c in sorted(os.listdir(crates))]
    files = []
    for p in paths:
        if os.path.isfile(p):
            files.append(p)
        for d, _, names in os.walk(p):
            files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".rs")]
    bad = 0
    for f in sorted(files):
        for name, line, n, why in functions(f):
            if n <= limit:
                continue
            where = f"{os.path.relpath(f, ROOT)}:{line} {name}: {n} lines"
            if why is None:
                bad += 1
                print(f"{where}, no `Long:` reason above it")
            elif show_all:
                print(f"{where}, kept: {why}")
    if bad:
        print(f"{bad} function(s) over {limit} lines without a reason: split them, or say why above them (`// Long: ...`)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
