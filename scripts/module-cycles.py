#!/usr/bin/env python3
"""Fails when files inside one crate depend on each other in a cycle (issue 12).

A file depends on another when it names a path into it: `use crate::a::b`, `super::x`,
`self::child`, or such a path written inline in code. A path ending at an item the target
re-exports (`pub use inner::Item`) counts as a dependency on `inner`. Unit-test modules
(`#[cfg(test)] mod ... { }`) are left out: a test may reach anywhere.

The crate root (lib.rs, main.rs, bin/*.rs) declares every module, so edges into the root are
left out of the cycle search: a module using the crate's error type is not a cycle. Edges out of
the root are kept, so a root that calls a module which calls back into another module still
shows the cycle between those modules.

Usage: scripts/module-cycles.py [--graph] [crates/NAME ...]   (default: every crate)
Exit status 1 when any cycle is found.
"""
import os
import re
import sys

from rust_source import NOISE

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def strip_comments_and_strings(text):
    return NOISE.sub(" ", text)


def drop_test_modules(text):
    """Removes `#[cfg(test)] mod NAME { ... }` bodies (and `#[cfg(test)] mod NAME;`)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*([{;])", text)
        if not m:
            return text
        if m.group(3) == ";":
            text = text[:m.start()] + text[m.end():]
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[:m.start()] + text[i:]


def crate_files(crate):
    """{module path tuple: file} for one crate root; roots are lib.rs, main.rs and bin/*.rs."""
    src = os.path.join(crate, "src")
    roots = [os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))]
    bindir = os.path.join(src, "bin")
    if os.path.isdir(bindir):
        roots += sorted(os.path.join(bindir, f) for f in os.listdir(bindir) if f.endswith(".rs"))
    trees = []
    for root in roots:
        mods = {(): root}

        def walk(path, file, is_dir_owner):
            text = drop_test_modules(strip_comments_and_strings(open(file).read()))
            base = os.path.dirname(file) if is_dir_owner else os.path.splitext(file)[0]
            for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
                name = m.group(1)
                for cand, owner in ((os.path.join(base, name + ".rs"), False), (os.path.join(base, name, "mod.rs"), True)):
                    if os.path.exists(cand):
                        mods[path + (name,)] = cand
                        walk(path + (name,), cand, owner)
                        break

        walk((), root, True)
        trees.append(mods)
    return trees


USE_RE = re.compile(r"\buse\s+([^;]*);")
PATH_RE = re.compile(r"\b(?:crate|super|self)(?:\s*::\s*\w+)+")


def expand_use_tree(tree):
    """'crate::{a::B, c::{D, E}}' -> ['crate::a::B', 'crate::c::D', 'crate::c::E']."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def expand(s):
        i = s.find("{")
        if i < 0:
            return [s]
        prefix, inner = s[:i], s[i + 1:s.rfind("}")]
        return [p for part in split_top(inner) for p in expand(prefix + part)]

    return expand(tree)


def local_paths(mods, mod, tree):
    """The paths of a use tree that stay in this crate, written from `crate`, `super` or `self`."""
    children = {s[-1] for s in mods if len(s) == len(mod) + 1 and s[:-1] == mod}
    out = []
    for p in expand_use_tree(tree):
        if re.match(r"(crate|super|self)::", p):
            out.append(p)
        elif p.split("::")[0] in children:
            out.append("self::" + p)
    return out


def resolve(mods, here, path):
    """The module a path lands in (longest module prefix), and the rest of the path."""
    segs = [s for s in re.split(r"::", path) if s]
    cur = list(here)
    if segs[0] == "crate":
        cur, segs = [], segs[1:]
    else:
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                cur = cur[:-1]
            segs = segs[1:]
    target = tuple(cur)
    rest = segs
    for k in range(len(segs), 0, -1):
        if tuple(cur) + tuple(segs[:k]) in mods:
            target, rest = tuple(cur) + tuple(segs[:k]), segs[k:]
            break
    return target, rest


def reexports(mods, texts):
    """{(module, name): module it comes from} for `pub use` items."""
    out = {}
    for mod, text in texts.items():
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);", text):
            for p in local_paths(mods, mod, m.group(1)):
                target, rest = resolve(mods, mod, p)
                if rest and target != mod:
                    out[(mod, rest[-1] if rest[-1] != "*" else "*")] = target
    return out


def edges(mods):
    texts = {m: drop_test_modules(strip_comments_and_strings(open(f).read())) for m, f in mods.items()}
    reexp = reexports(mods, texts)
    graph = {m: set() for m in mods}
    for mod, text in texts.items():
        paths = []
        for m in USE_RE.finditer(text):
            paths += local_paths(mods, mod, m.group(1))
        paths += [re.sub(r"\s", "", p.group(0)) for p in PATH_RE.finditer(USE_RE.sub(";", text))]
        for p in paths:
            target, rest = resolve(mods, mod, p)
            for _ in range(3):
                hop = reexp.get((target, rest[0])) if rest else None
                if hop is None:
                    break
                target, rest = hop, rest[1:] or rest
            if target != mod:
                graph[mod].add(target)
    return graph


def cycles(graph, roots):
    """Strongly connected components with more than one module (Tarjan), root edges dropped."""
    g = {m: {t for t in ts if t not in roots} for m, ts in graph.items()}
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return comps


def name(mod):
    return "::".join(mod) or "(root)"


def main(argv):
    show = "--graph" in argv
    args = [a for a in argv if a != "--graph"]
    crates = args or sorted(os.path.join(ROOT, "crates", c) for c in os.listdir(os.path.join(ROOT, "crates")))
    found = 0
    for crate in crates:
        for mods in crate_files(crate):
            graph = edges(mods)
            label = os.path.relpath(mods[()], ROOT)
            if show:
                for m in sorted(graph):
                    print(f"{label}: {name(m)} -> {', '.join(name(t) for t in sorted(graph[m])) or '-'}")
            for comp in cycles(graph, {()}):
                found += 1
                inner = {m: sorted(t for t in graph[m] if t in comp) for m in comp}
                print(f"cycle in {label}: " + "; ".join(f"{name(m)} -> {', '.join(name(t) for t in ts)}" for m, ts in inner.items()))
    if found:
        print(f"{found} module cycle(s): move the shared piece into the module that owns it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
