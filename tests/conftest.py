"""Fixtures shared by the whole suite: a real PostgreSQL server, SQL URLs for both stores, the datasets.

- ``postgres_server``: one real PostgreSQL server per pytest process (so one per xdist worker), started
  with ``initdb`` + ``pg_ctl`` in a temporary directory, stopped at the end of the session.
- ``postgres_url``: a fresh, empty database on that server for each test.
- ``sql_url``: parametrised over ``sqlite`` (a file in ``tmp_path``) and ``postgresql``.
- ``datasets_dir``: the real datasets in ``../shared/datasets`` beside the repository.

Without PostgreSQL binaries the PostgreSQL tests are skipped, except under CI (env ``CI`` set), where
they fail: CI must have installed the server.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pg_module() -> ModuleType:
    name = "itsm_kpi_pg_test_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "pg_test_server.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server for this test session (one per xdist worker)."""
    pg = _pg_module()
    bindir = pg.find_bindir()
    if bindir is None:
        message = f"PostgreSQL server binaries (initdb, pg_ctl) not found; {pg.INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must install PostgreSQL: {message}", pytrace=False)
        pytest.skip(message)
    server = pg.PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: object) -> Iterator[str]:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/t_xxx``: a fresh database for this test."""
    url = postgres_server.create_database()  # type: ignore[attr-defined]
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])  # type: ignore[attr-defined]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQL store URL: a SQLite file in ``tmp_path``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kpi.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repository (real ticketing datasets, read-only)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path} (they live in shared/datasets beside the repository)")
    return path
