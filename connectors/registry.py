"""One configured source -> its connector.

File kinds get a ``FileConnector``; REST kinds import their module only when asked for, so a config
with only file sources needs none of the HTTP code (and a missing optional module fails only the
source that needs it).
"""

from __future__ import annotations

import importlib
from typing import Any

from connectors.base import FILE_KINDS, Connector, SourceConfig
from kpis.errors import ConfigError

__all__ = ["build_connector"]

# kind -> (module, class); each class is built as ``cls(cfg)``.
REST_CONNECTORS = {
    "servicenow": ("connectors.servicenow", "ServiceNowConnector"),
    "jira": ("connectors.jira", "JiraConnector"),
    "zendesk": ("connectors.zendesk", "ZendeskConnector"),
}


def build_connector(cfg: SourceConfig, **kwargs: Any) -> Connector:
    """The connector for ``cfg.kind``; ``kwargs`` go to ``FileConnector`` (e.g. ``skip_files``).

    Raises ``ConfigError`` naming ``sources[..].kind`` for a kind no connector handles.
    """
    if cfg.kind in FILE_KINDS:
        from connectors.files import FileConnector

        return FileConnector(cfg, **kwargs)
    if cfg.kind in REST_CONNECTORS:
        module_name, class_name = REST_CONNECTORS[cfg.kind]
        connector_class = getattr(importlib.import_module(module_name), class_name)
        return connector_class(cfg)
    known = ", ".join((*FILE_KINDS, *REST_CONNECTORS))
    raise ConfigError(f"sources[{cfg.name!r}].kind", f"{cfg.kind!r} has no connector", f"use one of {known}")
