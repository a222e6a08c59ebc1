"""Config problems: each one line naming where (file or variable, key path, line) and what to do.

A config is checked whole before it is used; every problem found is a ``Problem``, and ``ConfigProblems``
(a ``ConfigError``, so every command exits 2) carries all of them at once:

    itsm-kpi.toml: sources['helpdesk'].options.delimiterr: unknown option (did you mean 'delimiter'?) (line 14)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from kpis.errors import ConfigError

__all__ = ["ConfigProblems", "Problem", "Path", "closest", "did_you_mean", "display_path"]

Path = tuple[str | int, ...]  # a key path: ("sources", 0, "options", "delimiterr")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config.

    ``path`` is the key path (empty for the whole file), ``shown`` the same path as the user reads it
    (``sources['helpdesk'].options``), ``origin`` the file or environment variable the value came from.
    """

    path: Path
    message: str
    origin: str = ""
    shown: str = ""
    line: int | None = None

    def __str__(self) -> str:
        key = self.shown or display_path(self.path)
        where = f" (line {self.line})" if self.line else ""
        if not key:  # the file itself: "itsm-kpi.toml does not exist"
            return " ".join(p for p in (self.origin, self.message) if p) + where
        return ": ".join(p for p in (self.origin, key, self.message) if p) + where

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON-ready fields (``validate --json``)."""
        return {"origin": self.origin, "key": self.shown or display_path(self.path), "line": self.line,
                "message": self.message}

    def placed(self, origin: str, shown: str, line: int | None) -> Problem:
        """The same problem with where it is."""
        return replace(self, origin=origin, shown=shown, line=line)


class ConfigProblems(ConfigError):
    """Every problem of one config, found at once (see kpis.errors for the whole tree)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else Problem((), "invalid config")
        super().__init__(display_path(first.path) or "--config", first.message)
        self.args = ("\n".join(self.lines()),)

    def lines(self) -> list[str]:
        """One line per problem, in the order found."""
        return [str(p) for p in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def display_path(path: Path, names: dict[tuple[str, int], str] | None = None) -> str:
    """``("sources", 0, "options", "x")`` -> ``sources['helpdesk'].options.x`` (by name where one is known)."""
    out = ""
    for i, part in enumerate(path):
        if isinstance(part, int):
            name = (names or {}).get((str(path[i - 1]), part)) if i else None
            out += f"[{name!r}]" if name else f"[{part}]"
        else:
            text = part if _bare(part) else repr(part)
            out += f".{text}" if out else text
    return out


def _bare(key: str) -> bool:
    return bool(key) and all(c.isalnum() or c in "_-" for c in key) and key.isascii()


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (a likely typo), or None when none is close."""
    found = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str], *, listed: int = 12) -> str:
    """`` (did you mean 'x'?)``, else `` (use one of a, b, c)`` for a short list, else nothing."""
    candidates = list(candidates)
    best = closest(word, candidates)
    if best is not None:
        return f" (did you mean {best!r}?)"
    if 0 < len(candidates) <= listed:
        return f" (use one of {', '.join(candidates)})"
    return ""
