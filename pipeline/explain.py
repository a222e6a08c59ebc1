"""``itsm-kpi explain``: why one ticket's numbers are what they are, as the last run computed them.

The ticket is computed again from the stored raw layer (``raw_tickets``, ``raw_events``, plus the maintenance
ticket its ``caused_by`` names and its approvals from ``adjustments``) with the KPI settings the run recorded
(``store_state.kpi_settings``) and the ``as_of`` of its stored ``ticket_facts`` row, through the same ``kpis``
functions as the run: ``compute_facts`` for the row, ``kpis.segments`` for the timeline and the events that
decided, ``kpis.aggregate.credits`` for the period rows. The answer is one JSON-ready dict (``--json``; keys in
docs/disputes.md) that ``pipeline.explain_text`` prints for a person in zh or en.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from kpis import compute_facts
from kpis.aggregate import COUNTS, credits, period_starts
from kpis.breakdown import members
from kpis.config import KpiSettings, SlaPolicy
from kpis.errors import BadRequest
from kpis.exemptions import applicable
from kpis.schema import TICKET_COLUMNS, TICKET_FACT_COLUMNS
from kpis.segments import EVENT_ROLES, event_roles, resolution_segments
from pipeline.store.errors import StoreError
from pipeline.store.parquet import ParquetStore
from pipeline.store.recompute import TicketInputs, stored_settings, ticket_inputs
from pipeline.store.sql import sql_engine, sqlite_file_missing

__all__ = ["UnknownTicket", "explain_ticket", "json_value"]

_KEY = ["source", "ticket_id"]
_CLOSEST = 3


class UnknownTicket(BadRequest):
    """The ticket (or source) asked for is not in the store; the message names the closest ids (exit 2)."""


@dataclass(frozen=True)
class Where:
    """The store to explain from, and the settings of ``--config`` (used when the store recorded none)."""

    root: Path
    sql_url: str
    config_settings: KpiSettings | None = None


def explain_ticket(where: Where, ticket_id: str, source: str | None = None) -> dict[str, Any]:
    """The explanation of one stored ticket, JSON-ready (docs/disputes.md lists its keys)."""
    parquet = ParquetStore(where.root)
    stored = _stored_row(parquet, ticket_id, source)
    settings, settings_from = _settings(where)
    as_of = pd.Timestamp(stored["as_of"]).tz_convert("UTC")
    key = pd.DataFrame({"source": [stored["source"]], "ticket_id": [stored["ticket_id"]]})
    inputs = ticket_inputs(parquet, key)
    facts = compute_facts(inputs.tickets, inputs.events, settings, as_of, inputs.approvals)
    me = int(np.flatnonzero((facts["source"] == stored["source"]).to_numpy() &
                            (facts["ticket_id"] == stored["ticket_id"]).to_numpy())[0])
    recomputed = _json_row(facts.iloc[me])
    stored_json = _json_row(stored)
    differences = {c: {"stored": stored_json[c], "recomputed": recomputed[c]} for c in stored_json
                   if stored_json[c] != recomputed[c]}
    return {
        "source": stored["source"], "ticket_id": stored["ticket_id"], "as_of": json_value(as_of),
        "kpi_version": stored_json["kpi_version"], "settings": settings_from,
        "reporting_timezone": settings.reporting_timezone,
        "matches_stored": not differences, "differences": differences, "facts": stored_json,
        "ticket": _as_read(inputs.tickets, key),
        "metrics": _metrics(settings, recomputed),
        "segments": _segments(inputs, settings, as_of, key),
        "events": _events(inputs, settings, as_of, key),
        "exemptions": _exemptions(inputs, settings, as_of, recomputed),
        "credits": _credits(facts, settings, me),
    }


# --- the stored row, the settings ---------------------------------------------------------------------

def _stored_row(parquet: ParquetStore, ticket_id: str, source: str | None) -> pd.Series:
    """The ticket's ``ticket_facts`` row; ``UnknownTicket`` naming the closest ids when there is none."""
    if not parquet.has("ticket_facts"):
        raise StoreError(f"the store at {parquet.root} holds no ticket_facts yet: run `itsm-kpi run` (or "
                         "`itsm-kpi demo --store DIR`) first, then explain its tickets")
    rows = parquet.read("ticket_facts", pc.field("ticket_id") == ticket_id)
    if source is not None:
        rows = rows[rows["source"] == source]
    if len(rows) == 1:
        return rows.iloc[0]
    if len(rows) > 1:
        raise UnknownTicket(f"ticket {ticket_id} is in several sources ({', '.join(sorted(rows['source']))}); "
                            "pass --source NAME")
    raise UnknownTicket(_not_found(parquet, ticket_id, source))


def _not_found(parquet: ParquetStore, ticket_id: str, source: str | None) -> str:
    """"no ticket T in source S; did you mean A, B?" (the closest ids of that source, or of every source)."""
    ids = parquet.read_columns("ticket_facts", ["source", "ticket_id"])
    sources = sorted(ids["source"].dropna().unique())
    if source is not None and source not in sources:
        return f"no source {source!r} in the store; its sources: {', '.join(sources) or 'none'}"
    if source is not None:
        ids = ids[ids["source"] == source]
    where = f"source {source}" if source is not None else f"any source ({', '.join(sources)})"
    close = sorted(difflib.get_close_matches(ticket_id, ids["ticket_id"].astype("str").unique().tolist(), n=_CLOSEST))
    hint = f"; did you mean {', '.join(close)}?" if close else "; check the id (itsm-kpi query \"SELECT ticket_id " \
        "FROM ticket_facts\")"
    return f"no ticket {ticket_id} in {where}{hint}"


def _settings(where: Where) -> tuple[KpiSettings, str]:
    """The KPI settings the store's last run recorded ("stored"), else those of ``--config`` ("config")."""
    missing = sqlite_file_missing(where.sql_url)
    if missing is not None:
        raise StoreError(f"no SQLite store at {missing}: run `itsm-kpi run` (or `itsm-kpi demo`) first")
    engine = sql_engine(where.sql_url)
    try:
        settings = stored_settings(engine)
    finally:
        engine.dispose()
    if settings is not None:
        return settings, "stored"
    if where.config_settings is not None:
        return where.config_settings, "config"
    raise StoreError("the store has no recorded KPI settings (its last run predates explain): run `itsm-kpi run` "
                     "once, or pass --config FILE to use the config's settings")


# --- JSON-ready values ----------------------------------------------------------------------------------

def json_value(value: Any) -> Any:
    """A stored value as JSON: ISO 8601 timestamps (UTC), ints, floats, bools, text; null for any missing."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").isoformat() if value.tzinfo else value.tz_localize("UTC").isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_row(row: pd.Series) -> dict[str, Any]:
    """A ``ticket_facts`` row with exactly its columns, JSON-ready."""
    return {name: _typed(row.get(name), column.dtype) for name, column in TICKET_FACT_COLUMNS.items()}


def _typed(value: Any, dtype: str) -> Any:
    value = json_value(value)
    if value is None:
        return None
    if dtype == "Int64":
        return int(value)
    if dtype == "Float64":
        return float(value)
    if dtype == "boolean":
        return bool(value)
    return value


def _as_read(tickets: pd.DataFrame, key: pd.DataFrame) -> dict[str, Any]:
    """The ticket's raw row (every canonical column that has a value)."""
    row = tickets[(tickets["source"] == key["source"][0]) & (tickets["ticket_id"] == key["ticket_id"][0])].iloc[0]
    out = {name: json_value(row[name]) for name in TICKET_COLUMNS}
    return {name: value for name, value in out.items() if value is not None}


# --- metrics ------------------------------------------------------------------------------------------

def _metrics(settings: KpiSettings, facts: dict[str, Any]) -> dict[str, Any]:
    """Per metric: the policy that matched and its conditions against the ticket's values, calendar, target,
    the stop, the durations, the due time and the verdict."""
    policies = {p.name: p for p in settings.sla}
    out = {}
    for metric, stop in (("response", "response_at"), ("resolution", "resolved_at")):
        policy = policies.get(facts[f"{metric}_policy"])
        values = {"ticket_type": facts["ticket_type"], "priority": facts[f"{metric}_priority"],
                  "client": facts["client"], "service": facts["service"], "category": facts["category"],
                  "team": facts["team"], "source": facts["source"]}
        out[metric] = {
            "policy": facts[f"{metric}_policy"], "priority": facts[f"{metric}_priority"],
            "conditions": _conditions(policy, values),
            "calendar": (policy.calendar if policy else None) or settings.default_calendar,
            "target_s": facts[f"{metric}_target_s"], "stop_at": facts[stop],
            "calendar_s": facts[f"{metric}_calendar_s"], "business_s": facts[f"{metric}_business_s"],
            "due_at": facts[f"{metric}_due_at"], "sla": facts[f"{metric}_sla"],
        }
        if metric == "resolution":
            pauses = policy.pause_statuses if policy and policy.pause_statuses is not None else settings.pause_statuses
            out[metric]["pause_statuses"] = list(pauses)
    return out


def _conditions(policy: SlaPolicy | None, values: dict[str, Any]) -> dict[str, Any]:
    """Each condition the policy names: the values it accepts and the ticket's value that matched them."""
    if policy is None:
        return {}
    return {name: {"accepts": list(accepted), "ticket": values.get(name)} for name, accepted in policy.conditions.items()}


# --- timeline, events, exemptions, credits -----------------------------------------------------------------

def _of(frame: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["source"] == key["source"][0]) & (frame["ticket_id"] == key["ticket_id"][0])]


def _segments(inputs: TicketInputs, settings: KpiSettings, as_of: pd.Timestamp, key: pd.DataFrame) -> list[dict]:
    """The resolution timeline (``kpis.segments.resolution_segments``) as the contract's list of segments."""
    segments = _of(resolution_segments(inputs.tickets, inputs.events, settings, as_of, inputs.approvals), key)
    return [{"status": json_value(r["status"]), "start": json_value(pd.Timestamp(r["start"])),
             "end": json_value(pd.Timestamp(r["end"])), "calendar_s": int(r["calendar_s"]),
             "business_s": int(r["business_s"]), "counted": bool(r["counted"]), "why": r["why"]}
            for r in segments.to_dict("records")]


def _events(inputs: TicketInputs, settings: KpiSettings, as_of: pd.Timestamp, key: pd.DataFrame) -> list[dict]:
    """The ticket's events in history order, each with the facts it decided (``kpis.segments.event_roles``)."""
    roles = _of(event_roles(inputs.tickets, inputs.events, settings, as_of, inputs.approvals), key)
    names = [role for kind_roles in EVENT_ROLES.values() for role in kind_roles]
    out = []
    for r in roles.to_dict("records"):
        decided = sorted({role for role in names if r.get(role)})
        out.append({"at": json_value(pd.Timestamp(r["at"])), "kind": r["kind"], "value": json_value(r["value"]),
                    "actor": json_value(r["actor"]), "decides": decided})
    return out


def _exemptions(inputs: TicketInputs, settings: KpiSettings, as_of: pd.Timestamp, facts: dict) -> list[dict]:
    """The ticket's approvals: applied at this as_of or not, and what each one changed."""
    approvals = inputs.approvals
    if not len(approvals):
        return []
    plain = compute_facts(inputs.tickets, inputs.events, settings, as_of)  # the same ticket without approvals
    before = _json_row(plain[(plain["source"] == facts["source"]) & (plain["ticket_id"] == facts["ticket_id"])].iloc[0])
    field = {"response": "response_sla", "resolution": "resolution_sla", "ticket": "excluded_reason"}
    out = []
    for r, applied in zip(approvals.to_dict("records"), applicable(approvals, as_of), strict=True):
        column = field[r["scope"]]
        out.append({"scope": r["scope"], "reason": r["reason"], "approved_by": r["approved_by"],
                    "approved_at": json_value(r["approved_at"]), "file": json_value(r["file"]),
                    "applied": bool(applied), "field": column, "without": before[column], "with": facts[column]})
    return out


def _credits(facts: pd.DataFrame, settings: KpiSettings, me: int) -> list[dict]:
    """The period rows the ticket counts in (``kpis.aggregate.credits``): per anchor its local day, the row it
    is credited to (its own, or for an induced incident the maintenance ticket's) and each grain's period.
    ``facts`` holds the ticket (row ``me``) and the ticket its ``caused_by`` names."""
    all_credits = credits(facts, settings)
    # the frame holds the ticket and the maintenance ticket it names: every induced credit in it is this one's
    mine = all_credits[(all_credits["row"] == me) | (all_credits["anchor"] == "induced")]
    return [_credit(facts, settings, r) for r in mine.to_dict("records")]


def _credit(facts: pd.DataFrame, settings: KpiSettings, credit: dict) -> dict:
    row = facts.iloc[int(credit["row"])]
    day = np.datetime64(credit["day"], "D")
    return {
        "anchor": credit["anchor"], "day": str(day), "ticket_id": row["ticket_id"],
        "engineer": row["engineer"], "team": row["team"], "ticket_type": row["ticket_type"],
        "members": {d: members(pd.Series([row[d]], dtype="str")).iloc[0] for d in settings.breakdowns},
        "periods": {g: str(period_starts(np.array([day]), g)[0]) for g in settings.grains},
        "counts": [c for c in COUNTS if credit[c]],
    }
