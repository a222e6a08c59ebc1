"""pipeline/entry.py: the console script ends a Ctrl-C during its imports with one line, not a traceback."""

from __future__ import annotations

import importlib.abc
import sys

import pytest

from pipeline import entry


class _CtrlCWhileImporting(importlib.abc.MetaPathFinder):
    """A Ctrl-C that arrives while ``pipeline.cli`` is being imported (its imports take ~0.5 s)."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 (the finder protocol)
        if name == "pipeline.cli":
            raise KeyboardInterrupt
        return None


def test_a_ctrl_c_while_the_cli_is_imported_prints_one_line_and_exits_130(monkeypatch, capsys) -> None:
    monkeypatch.delitem(sys.modules, "pipeline.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_CtrlCWhileImporting(), *sys.meta_path])

    assert entry.main() == 130
    assert capsys.readouterr().err == "itsm-kpi: interrupted by SIGINT; nothing was started\n"


def test_the_entry_runs_the_cli(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["itsm-kpi", "--version"])
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("itsm-kpi ")
