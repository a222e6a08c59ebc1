"""A file's bytes to text: ``.gz`` opened, the encoding declared or detected (BOMs, UTF-8, GB18030), and the
lines that cannot be decoded set aside as ``BadLine``s; ``FileRefused`` when the file cannot be read at all."""

from __future__ import annotations

import codecs
import gzip
import zlib
from pathlib import Path

from connectors.base import SourceConfig
from connectors.errors import SourceResponseError
from connectors.lines import (
    BadLine,
    decode_lines,
    looks_like_utf8,
)
from kpis.errors import ConfigError

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class FileRefused(SourceResponseError):
    """One file of a source cannot be read at all; ``reason`` is one line naming the file.

    Raised by ``read_raw_table``; ``FileConnector`` catches it, records the refusal and reads the
    source's other files.
    """

    def __init__(self, source: str, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(source, reason)


def read_bytes(path: Path, compressed: bool, cfg: SourceConfig) -> bytes:
    """The file's bytes, decompressed for ``.gz``; a broken or false ``.gz`` refuses the file."""
    data = path.read_bytes()
    if not compressed:
        return data
    try:
        return gzip.decompress(data)
    except gzip.BadGzipFile:
        reason = f"{path.name} is not gzip-compressed although its name ends in .gz; rename or replace it"
    except EOFError:
        reason = f"{path.name} is truncated: its gzip stream ends early; replace it with a complete copy"
    except zlib.error as e:
        reason = f"{path.name} is a corrupt gzip file ({e}); replace it"
    raise FileRefused(cfg.name, path, reason)


# --- bytes -> text ---------------------------------------------------------------------------------

def _ascii_compatible(encoding: str) -> bool:
    """Whether lines can be found and decoded one by one (not so for UTF-16 and UTF-32)."""
    return "a\n".encode(encoding) == b"a\n"


def _checked_encoding(cfg: SourceConfig) -> str:
    try:
        return codecs.lookup(str(cfg.encoding)).name
    except LookupError:
        raise ConfigError(f"sources[{cfg.name!r}].encoding", f"{cfg.encoding!r} is not an encoding",
                          'use e.g. "utf-8", "gb18030" or "big5"') from None


def _decode_as(data: bytes, encoding: str, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], str]:
    """Text in a known encoding (set, or from a BOM); lines it cannot decode are reported, not fatal."""
    try:
        return data.decode(encoding), [], encoding
    except UnicodeDecodeError as e:
        if not _ascii_compatible(encoding):
            raise FileRefused(cfg.name, path, f"{path.name} is not {encoding}: {e}; fix sources.encoding") from None
    text, bad, _ = decode_lines(data, encoding)
    return text, bad, encoding


def _detect(data: bytes, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], str]:
    """UTF-8, else GB18030; a file that decodes cleanly in neither is judged line by line.

    A file that looks like UTF-8 despite bad bytes (``looks_like_utf8``) is not tried as GB18030 first:
    GB18030 reads almost any byte pair, so a UTF-8 file with one stray byte could decode "cleanly",
    every Chinese character garbled. UTF-8 with bad lines is kept when it decodes more of the lines
    holding non-ASCII bytes than it fails, or when only one line fails; GB18030 with bad lines when
    they are at most one in a hundred of those lines. Otherwise the file is refused, naming
    ``sources.encoding``.
    """
    try:
        return data.decode("utf-8"), [], "utf-8"
    except UnicodeDecodeError:
        pass
    utf8 = looks_like_utf8(data)
    if not utf8:
        try:
            return data.decode("gb18030"), [], "gb18030"
        except UnicodeDecodeError:
            pass
    text, bad, non_ascii = decode_lines(data, "utf-8")
    if len(bad) <= 1 or (utf8 and len(bad) < non_ascii - len(bad)):
        return text, bad, "utf-8"
    gb_text, gb_bad, _ = decode_lines(data, "gb18030")
    if len(gb_bad) <= max(1, non_ascii // 100):
        return gb_text, gb_bad, "gb18030"
    raise FileRefused(cfg.name, path, f"{path.name} is neither UTF-8 nor GB18030 ({len(bad)} of {non_ascii} lines "
                                      "with non-ASCII bytes are not UTF-8); set sources.encoding (e.g. \"big5\")")


def decode(data: bytes, cfg: SourceConfig, path: Path) -> tuple[str, list[BadLine], bytes | None]:
    """Text of an export: ``cfg.encoding``, else a BOM, else UTF-8, else GB18030 (Chinese Excel/WPS).

    Returns the text with each undecodable line blanked, those lines, and the text's UTF-8 bytes when
    they come for free (a clean UTF-8 file: its own bytes, so Arrow needs no re-encoded copy).
    """
    body, encoding = data, None
    if cfg.encoding:
        encoding = _checked_encoding(cfg)
    else:
        for bom, bom_encoding in _BOMS:
            if data.startswith(bom):
                body, encoding = data[len(bom):], bom_encoding
                break
    text, bad, used = _detect(body, cfg, path) if encoding is None else _decode_as(body, encoding, cfg, path)
    return text, bad, body if not bad and codecs.lookup(used).name == "utf-8" else None
