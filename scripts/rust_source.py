"""Rust source text as the scripts in scripts/ read it (shared by module-cycles.py and
long-functions.py so both skip the same comments and literals)."""
import re

# Comments, string and char literals (block comments are taken as unnested).
NOISE = re.compile(r"""//[^\n]*|/\*.*?\*/|\br(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\]|\\u\{\w+\})'""", re.S)


def blank(text):
    """Blanks comments and literals but for their newlines, so line numbers hold."""
    return NOISE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
