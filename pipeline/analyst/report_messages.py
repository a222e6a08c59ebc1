"""The report's texts in Chinese and English: one message table, ``templates/messages.toml``.

The table is read from the installed package (``importlib.resources``), never from the working directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources

__all__ = ["LANGS", "messages", "translator"]

LANGS = ("zh", "en")
_TABLE = ("templates", "messages.toml")


@cache
def messages() -> dict[str, dict[str, str]]:
    """Every message id with its text per language, as the package ships them."""
    path = resources.files("pipeline.analyst").joinpath(*_TABLE)
    return tomllib.loads(path.read_text(encoding="utf-8"))


def translator(lang: str) -> Callable[..., str]:
    """``t(message_id)``: the message's text in ``lang``.

    An id the table lacks is a bug (KeyError naming it), unless the caller passes ``fallback``: ids that
    come from the data (a ticket type, a configured KPI) do, and then the fallback is shown.
    """
    table = messages()

    def t(message_id: str, fallback: str | None = None) -> str:
        """The text of ``message_id`` in the report's language."""
        texts = table.get(message_id)
        if texts is None:
            if fallback is None:
                raise KeyError(f"message {message_id!r} is not in pipeline/analyst/templates/messages.toml")
            return fallback
        return texts[lang]

    return t
