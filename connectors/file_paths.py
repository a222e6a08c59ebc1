"""Which files a file source or an approvals setting names: a file, a glob (``**`` walks each real folder
once) or a folder, each real file once, and a file's SHA-256 (how a file is known as read)."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from connectors.base import SourceConfig
from connectors.errors import SourceUnreachable

# File name endings (after an optional ".gz") -> the reader that handles them.
FORMATS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv",
    ".xlsx": "excel", ".xlsm": "excel",
    ".json": "json",
    ".ndjson": "ndjson", ".jsonl": "ndjson",
    ".parquet": "parquet", ".pq": "parquet",
}
_KIND_FORMATS = {"csv": {"csv"}, "excel": {"excel"}, "json": {"json", "ndjson"},
                 "ndjson": {"ndjson"}, "parquet": {"parquet"}}


# --- one file -> a frame of text -----------------------------------------------------------------

def known_format(path: Path) -> tuple[str | None, bool]:
    """(reader name or None, gzip-compressed?) from the file name alone."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1] if suffixes else ""), compressed


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matching_files(pattern: str, formats: Iterable[str]) -> list[Path]:
    """A file, a glob or a folder -> the files of one of the readers ``formats`` (csv, excel, json, ndjson,
    parquet) it names, sorted, each real file once; empty when there is none (a named file is kept whatever
    its extension: it was asked for)."""
    target, wanted = Path(pattern), set(formats)
    if target.is_file():
        return [target]
    found = target.iterdir() if target.is_dir() else _glob(pattern)
    return _once_each(p for p in found if p.is_file() and known_format(p)[0] in wanted
                      and not p.name.startswith((".", "~$")))


# --- a source: its files, each read once ---------------------------------------------------------

@dataclass
class ExportFile:
    """One export file; its key ``name:sha256`` is computed when first asked for."""

    path: Path

    @cached_property
    def key(self) -> str:
        return f"{self.path.name}:{file_digest(self.path)}"


def _matches_kind(path: Path, cfg: SourceConfig) -> bool:
    fmt, _ = known_format(path)
    return fmt in _KIND_FORMATS.get(cfg.kind, set()) and not path.name.startswith((".", "~$"))


def _segment_matches(name: str, pattern: str) -> bool:
    """One path segment against one glob segment; like ``glob``, a wildcard never matches a hidden name."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _parts_match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """A relative path (as segments) against a glob (as segments); ``**`` is any number of folders."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return _parts_match(parts, rest) or (
            bool(parts) and not parts[0].startswith(".") and _parts_match(parts[1:], pattern))
    return bool(parts) and _segment_matches(parts[0], head) and _parts_match(parts[1:], rest)


def _recursive_glob(pattern: str) -> list[Path]:
    """``glob.glob(pattern, recursive=True)`` that walks each real folder once.

    Symlinked folders are followed, but one reached again (a link to a parent: a loop, or two links
    to one folder) is not entered a second time; ``glob`` itself would walk a loop 40 levels deep.
    """
    parts = Path(pattern).parts
    first_magic = next(i for i, p in enumerate(parts) if glob.has_magic(p))
    root = Path(*parts[:first_magic]) if first_magic else Path(".")
    wanted = parts[first_magic:]
    found, walked = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            subfolders[:] = []
            continue
        walked.add(real)
        relative = Path(folder).relative_to(root).parts
        found.extend(Path(folder) / f for f in files if _parts_match((*relative, f), wanted))
    return found


def _glob(pattern: str) -> list[Path]:
    if "**" in pattern:
        return _recursive_glob(pattern)
    return [Path(p) for p in glob.glob(pattern)]


def _once_each(paths: Iterable[Path]) -> list[Path]:
    """Paths sorted, each real file once (the first path that reaches it)."""
    out: dict[Path, Path] = {}
    for p in sorted(paths, key=str):
        out.setdefault(p.resolve(), p)
    return list(out.values())


def resolve_files(pattern: str, cfg: SourceConfig, setting: str = "path") -> list[Path]:
    """A file, a glob or a directory -> its export files sorted by path, each real file once;
    ``SourceUnreachable`` when there is none."""
    target = Path(pattern)
    if target.is_dir():
        found = [p for p in target.iterdir() if p.is_file() and _matches_kind(p, cfg)]
    elif target.is_file():
        found = [target]
    else:
        found = [p for p in _glob(pattern) if p.is_file()]
    if not found:
        where = "folder has no export files" if target.is_dir() else "no file matches it"
        hint = "" if target.is_absolute() else f" (a relative path starts at the working directory, {Path.cwd()})"
        raise SourceUnreachable(cfg.name, f"{setting} {pattern!r}: {where}; check sources.{setting}{hint}")
    return _once_each(found)
