"""connectors.registry: the right connector per kind, REST modules imported only when needed."""

from __future__ import annotations

import sys
import types

import pytest

from connectors.files import FileConnector
from connectors.registry import build_connector
from kpis.errors import ConfigError


@pytest.mark.parametrize("kind", ["csv", "excel", "json", "ndjson", "parquet"])
def test_file_kinds_get_a_file_connector(make_source, kind):
    connector = build_connector(make_source(kind=kind), skip_files={"a.csv:00"})
    assert isinstance(connector, FileConnector)
    assert connector.config.kind == kind
    assert connector.skip_files == {"a.csv:00"}


@pytest.mark.parametrize(("kind", "module", "class_name"), [
    ("servicenow", "connectors.servicenow", "ServiceNowConnector"),
    ("jira", "connectors.jira", "JiraConnector"),
    ("zendesk", "connectors.zendesk", "ZendeskConnector"),
])
def test_rest_kinds_are_imported_lazily(make_source, monkeypatch, kind, module, class_name):
    class Fake:
        def __init__(self, cfg):
            self.config = cfg

    monkeypatch.setitem(sys.modules, module, types.SimpleNamespace(**{class_name: Fake}))
    cfg = make_source(kind=kind, path=None, url="https://example.test")
    connector = build_connector(cfg)
    assert isinstance(connector, Fake) and connector.config is cfg


def test_unknown_kind_is_a_config_error(make_source):
    with pytest.raises(ConfigError, match=r"sources\['hd'\]\.kind: 'gopher' has no connector \(use one of csv"):
        build_connector(make_source(kind="gopher"))
