"""pipeline.refresh by property: with the earlier ``as_of`` known, the facts a night keeps and recomputes
equal a full recomputation at the night's ``as_of`` (DECISIONS.md D97).

Hypothesis draws a few open and closed incidents, requests and maintenance tickets on an office calendar
(policies with their own calendars and pause statuses), with status, priority and category events, some of
them after the first ``as_of``. The facts are stored at ``as_of`` A0; a night at A1 >= A0 with no changed
ticket must give exactly ``compute_facts`` at A1. A1 is drawn freely or placed on the stored due times and
planned ends, a second or a minute either side, where a verdict turns.
"""

from __future__ import annotations

import pandas as pd
from helpers import events, settings, tickets
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis import compute_facts
from kpis.schema import TICKET_FACT_COLUMNS
from pipeline.refresh import refresh_facts
from pipeline.store.parquet import to_arrow

SETTINGS = settings(
    kpi={"default_calendar": "office"},
    reporting={"timezone": "Asia/Shanghai"},
    sla=[{"name": "p1", "priority": "P1", "response": "30m", "resolution": "4h", "calendar": "24x7",
          "pause_statuses": ["WAITING_THIRD_PARTY"], "ticket_type": ["incident", "request"]},
         {"name": "net", "category": "net", "response": "2h", "resolution": "1d",
          "pause_statuses": ["ON_HOLD", "WAITING_CUSTOMER"], "ticket_type": ["incident", "request"]},
         {"name": "rest", "ticket_type": ["incident", "request"], "response": "1h", "resolution": "2d"}],
)  # maintenance tickets have no SLA: only their planned end reads the clock
STATUSES = ["NEW", "IN_PROGRESS", "WAITING_CUSTOMER", "WAITING_THIRD_PARTY", "ON_HOLD", "RESOLVED", "CLOSED"]
OPEN = ["NEW", "IN_PROGRESS", "WAITING_CUSTOMER", "WAITING_THIRD_PARTY", "ON_HOLD"]
BASE = pd.Timestamp("2026-03-27T00:00Z")  # a Friday; the office works 09:00-12:00 and 13:30-18:00 Shanghai
KEY = ["source", "ticket_id"]


def at(seconds: int) -> str:
    return str(BASE + pd.Timedelta(seconds=seconds))


@st.composite
def histories(draw) -> tuple[list[dict], list[dict], pd.Timestamp]:
    """The first ``as_of`` and tickets opened in the three days before it, most still open, with events in
    their first hours or days later."""
    first_s = draw(st.integers(3 * 86400, 6 * 86400))
    trows, erows = [], []
    for i in range(draw(st.integers(1, 8))):
        opened = first_s - draw(st.integers(0, 3 * 86400))
        kind = draw(st.sampled_from(["incident", "request", "maintenance"]))
        later = st.integers(0, 3 * 86400).map(lambda d, o=opened: at(o + d))
        status = draw(st.sampled_from(OPEN + ["RESOLVED", "CLOSED"]))
        t = {"ticket_id": f"T{i}", "ticket_type": kind, "status": status, "opened_at": at(opened),
             "priority": draw(st.sampled_from(["P1", "P2", None])), "category": draw(st.sampled_from(["net", "hw"])),
             "first_response_at": draw(st.one_of(st.none(), later)),
             "resolved_at": draw(later) if status in ("RESOLVED", "CLOSED") else None}
        if kind == "maintenance":
            t["planned_end"] = draw(st.one_of(st.none(), later, later))
        trows.append(t)
        # mostly in the first hours, now and then days later; a quarter of the tickets have events after
        # the first as_of (they are recomputed), the others' events stop at it
        last = opened + 6 * 86400 if draw(st.sampled_from([False, False, False, True])) else first_s
        soon = _times([0, 600, 1800, 3600, 4 * 3600, 2 * 86400], opened, last)
        any_day = _times([0, 3600, 86400, 2 * 86400, 3 * 86400], opened, last)
        for kind_, values, when in (("status", STATUSES, soon), ("priority", ["P1", "P2"], any_day),
                                    ("category", ["net", "hw"], soon)):
            for _ in range(draw(st.integers(0, 3 if kind_ == "status" else 1))):
                erows.append({"source": "helpdesk", "ticket_id": t["ticket_id"], "kind": kind_, "actor": "",
                              "at": draw(when), "value": draw(st.sampled_from(values))})
    for seq, e in enumerate(erows):
        e["seq"] = seq
    return trows, erows, BASE + pd.Timedelta(seconds=first_s)


def _times(offsets_s: list[int], opened_s: int, last_s: int) -> st.SearchStrategy[str]:
    """Instants ``offsets_s`` after the opening, none later than ``last_s``."""
    return st.sampled_from(offsets_s).map(lambda d: at(min(opened_s + d, last_s)))


def turning_points(facts: pd.DataFrame) -> list[pd.Timestamp]:
    """Where stored verdicts can turn: the due times of clocks in progress, the planned ends of maintenance."""
    due = [facts.loc[facts[f"{m}_sla"] == "in_progress", f"{m}_due_at"] for m in ("response", "resolution")]
    maintenance = facts.loc[facts["ticket_type"] == "maintenance", "planned_end"]
    return sorted({pd.Timestamp(v) for v in pd.concat([*due, maintenance]).dropna()})


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.data())
def test_a_night_with_a_known_earlier_as_of_equals_a_full_recomputation(history, data) -> None:
    trows, erows, as_of_0 = history
    frame, history_events = tickets(*trows), events(*erows)
    stored = compute_facts(frame, history_events, SETTINGS, as_of_0)
    turning = [t for t in turning_points(stored) if t >= as_of_0]
    if turning and data.draw(st.booleans(), label="on a turning point"):
        as_of_1 = data.draw(st.sampled_from(turning)) + pd.Timedelta(seconds=data.draw(st.sampled_from([-60, -1, 0, 1, 60])))
        as_of_1 = max(as_of_1, as_of_0)
    else:
        as_of_1 = as_of_0 + pd.Timedelta(seconds=data.draw(st.integers(0, 4 * 86400)))

    night = refresh_facts(frame, history_events, frame[KEY].iloc[:0], to_arrow(stored, TICKET_FACT_COLUMNS), SETTINGS,
                          as_of_1, reuse=True, stored_as_of=as_of_0)

    full = compute_facts(frame, history_events, SETTINGS, as_of_1)
    pd.testing.assert_frame_equal(night.facts.sort_values(KEY, ignore_index=True),
                                  full.sort_values(KEY, ignore_index=True), check_exact=True)
