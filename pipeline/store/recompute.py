"""What a stored ticket's numbers were computed from, read back to compute them again (``itsm-kpi explain``,
the report's breach timelines): its raw row and events, the maintenance ticket its ``caused_by`` names, its
approved exemptions, and the KPI settings of the run.

Every run records its KPI settings (``kpis.config.settings_to_json``) in ``store_state`` under ``KPI_SETTINGS``
in the transaction that writes its facts, so a store alone is enough to recompute any ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from kpis.config import KpiSettings, settings_from_json
from kpis.errors import first_line
from kpis.keys import key_hits
from kpis.schema import ADJUSTMENT_COLUMNS, conform
from pipeline.store.errors import StoreError
from pipeline.store.ledger import Ledger
from pipeline.store.parquet import ParquetStore

__all__ = ["KPI_SETTINGS", "TicketInputs", "stored_settings", "ticket_inputs"]

#: ``store_state`` name of the KPI settings (JSON) of the last run that wrote facts.
KPI_SETTINGS = "kpi_settings"
_KEY = ["source", "ticket_id"]


@dataclass(frozen=True)
class TicketInputs:
    """Canonical frames of some tickets, as the raw layer holds them, and their approvals."""

    tickets: pd.DataFrame
    events: pd.DataFrame
    approvals: pd.DataFrame


def stored_settings(engine: Engine) -> KpiSettings | None:
    """The KPI settings the last run recorded, or None (a store written before they were recorded)."""
    try:
        text = Ledger(engine).store_state(KPI_SETTINGS)
    except SQLAlchemyError as e:
        raise StoreError(f"cannot read store_state from the SQL store: {first_line(e)}") from e
    if text is None:
        return None
    try:
        return settings_from_json(text)
    except ValueError as e:
        raise StoreError(f"the KPI settings recorded in store_state cannot be read ({e}); run the pipeline once "
                         "with this version") from None


def ticket_inputs(parquet: ParquetStore, keys: pd.DataFrame, *, with_causes: bool = True) -> TicketInputs:
    """The raw rows and events of the tickets ``keys`` (source, ticket_id) and, with ``with_causes``, of the
    tickets their ``caused_by`` names (an induced incident's fact reads its maintenance ticket); with the
    approvals (``adjustments``) of the tickets asked for."""
    tickets = _rows(parquet, "raw_tickets", keys)
    if with_causes and len(tickets):
        causes = tickets.loc[tickets["caused_by"].notna(), ["source", "caused_by"]].rename(
            columns={"caused_by": "ticket_id"})
        more = _rows(parquet, "raw_tickets", causes)
        tickets = pd.concat([tickets, more[~key_hits(more[_KEY], tickets[_KEY])]], ignore_index=True)
    approvals = _rows(parquet, "adjustments", keys)
    return TicketInputs(tickets.reset_index(drop=True), _rows(parquet, "raw_events", tickets[_KEY]),
                        conform(approvals, ADJUSTMENT_COLUMNS))


def _rows(parquet: ParquetStore, table: str, keys: pd.DataFrame) -> pd.DataFrame:
    """The rows of a Parquet table whose (source, ticket_id) is one of ``keys``."""
    keys = keys[_KEY].dropna().astype("str").drop_duplicates()
    wanted = pc.field("ticket_id").isin(pa.array(keys["ticket_id"].unique(), type=pa.string())) & \
        pc.field("source").isin(pa.array(keys["source"].unique(), type=pa.string()))
    try:
        rows = parquet.read(table, wanted)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read Parquet table {table} in {parquet.root}: {first_line(e)}") from e
    return rows[key_hits(rows[_KEY].astype("str"), keys)].reset_index(drop=True) if len(rows) else rows
