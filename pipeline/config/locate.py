"""Line numbers of key paths in a TOML text, found by a light scan (best effort).

``tomllib`` says where a *syntax* error is, but a value that parses and is wrong (a misspelt option, a
bad timezone) comes back without a position. ``key_lines`` reads the text line by line the way a person
would: ``[table]`` and ``[[array]]`` headers set where we are, ``key = value`` lines (dotted and quoted
keys included) and the keys of inline tables ``{ a = 1, b = { c = 2 } }`` on that line give their path.
Multi-line strings and arrays are skipped over by the same rules; a key written in a way this scan
does not follow simply has no line, and the problem is reported without one.
"""

from __future__ import annotations

import re

__all__ = ["key_lines", "line_of"]

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = re.compile(rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")


def _split_key(text: str) -> list[str]:
    """``a."b.c".d`` -> ["a", "b.c", "d"]."""
    parts = re.findall(_KEY, text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _mask_strings(line: str) -> str:
    """The line with the inside of every string blanked, so braces and ``=`` in values do not count."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2)
                  + m.group(0)[-1], line)


class _Scanner:
    """Walks the lines, remembering the current table and how many entries each array of tables has."""

    def __init__(self) -> None:
        self.table: Path = ()
        self.counts: dict[Path, int] = {}
        self.lines: dict[Path, int] = {}

    def _resolve(self, keys: list[str]) -> Path:
        """A header's dotted keys with the current index of every array of tables on the way."""
        out: Path = ()
        for key in keys:
            out = (*out, key)
            if out in self.counts:
                out = (*out, self.counts[out] - 1)
        return out

    def header(self, is_array: bool, keys: list[str], number: int) -> None:
        path = self._resolve(keys[:-1]) + (keys[-1],)
        if is_array:
            self.counts[path] = self.counts.get(path, 0) + 1
            path = (*path, self.counts[path] - 1)
        self.table = path
        self.lines.setdefault(path, number)

    def key_line(self, line: str, masked: str, number: int) -> None:
        """A ``key = value`` line (``masked``: strings blanked, comment cut)."""
        found = _DOTTED.match(masked)
        if not found:
            return
        base = (*self.table, *_split_key(line[found.start(1):found.end(1)]))
        self.lines.setdefault(base, number)
        self._inline(line, masked, found.end(), base, number)

    def _inline(self, line: str, masked: str, start: int, base: Path, number: int) -> None:
        """Keys of inline tables after ``=``, each under the key whose value its braces open."""
        stack: list[Path] = []
        last = base
        for i in range(start, len(masked)):
            char = masked[i]
            if char == "{":
                stack.append(last)
            elif char == "}" and stack:
                stack.pop()
            if char in "{," and stack:
                found = _INLINE_KEY.match(masked, i)
                if found:
                    last = (*stack[-1], *_split_key(line[found.start(1):found.end(1)]))
                    self.lines.setdefault(last, number)


def key_lines(text: str) -> dict[Path, int]:
    """Key path -> 1-based line of its first mention (table headers, keys, inline-table keys)."""
    scanner = _Scanner()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        opens = (line.count('"""') + line.count("'''")) % 2 == 1
        if in_multiline:
            in_multiline = not opens
            continue
        in_multiline = opens
        masked = _mask_strings(line).split("#", 1)[0]
        if not masked.strip():
            continue
        head = _HEADER.match(masked)
        if head and not _DOTTED.match(masked):
            scanner.header(head.group(1) == "[[", _split_key(line[head.start(2):head.end(2)]), number)
        else:
            scanner.key_line(line, masked, number)
    return scanner.lines


def line_of(path: Path, lines: dict[Path, int]) -> int | None:
    """The line of ``path``, else of its nearest enclosing key that has one."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
