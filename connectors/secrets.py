"""Secrets from the environment: a variable, or a file named by the same variable with ``_FILE`` appended.

Docker and Kubernetes mount secrets as files; ``SN_PASSWORD_FILE=/run/secrets/sn`` then stands for
``SN_PASSWORD`` (the file's content, one trailing newline removed). The variable itself wins when both
are set. A secret is never logged: this module returns it and says nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FILE_SUFFIX", "SecretFileError", "env_secret"]

FILE_SUFFIX = "_FILE"


class SecretFileError(OSError):
    """``NAME_FILE`` names a file that cannot be read as UTF-8 text."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}{FILE_SUFFIX} names a file that cannot be read ({reason})")


def env_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of ``name`` in ``env`` (default ``os.environ``), else the content of the file ``name_FILE``
    names, trailing newline removed; None when neither is set. Raises ``SecretFileError`` for a file that
    cannot be read."""
    env = os.environ if env is None else env
    value = env.get(name)
    if value:
        return value
    path = env.get(name + FILE_SUFFIX)
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(name, type(exc).__name__ if isinstance(exc, UnicodeDecodeError)
                              else exc.strerror or type(exc).__name__) from None
    return text.removesuffix("\n").removesuffix("\r") or None
