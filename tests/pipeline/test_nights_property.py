"""The nightly promise, by property: any sequence of nights leaves the stores as one backfill of the same
files would (DECISIONS.md D20: but for ``as_of``, which a row keeps from the night that last changed it).

Hypothesis draws a few tickets (T0 maintenance work, the others incidents that may name it in
``caused_by``) and two or three nights; each night a ticket export and an event export land in the folder:
new tickets, copies read again (newer, the same, of the same ``updated_at`` with other content, or older
than one already read), late events, history sent again, changes that return within one minute (A -> B ->
A), the maintenance ticket changing after its incidents. After the nights, a fresh store backfills every
file at the last night's ``as_of``; every table of both stores must match, raw layer included.

Real CSV files, SQLite and Parquet, ``run_job`` as the CLI calls it; a few small examples (CI time).
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from ops_helpers import DAY1_AS_OF, _ticket, at, load, snapshot, write_config, write_export

from pipeline.jobs import run_job
from pipeline.periods import dates_window

PEOPLE = ("王芳", "张伟")
GROUPS = ("桌面组", "网络组")
STATUSES = ("NEW", "IN_PROGRESS", "RESOLVED", "CLOSED")
WINDOW = dates_window(date(2026, 6, 1), date(2026, 8, 31))


def _copy(draw, tid: str, version: int, previous: dict | None) -> dict:
    """One export of ``tid``: a new version (later updated_at), the last one again, a tie with other
    content, or an older version (a late file)."""
    how = draw(st.sampled_from(["newer", "newer", "same", "tie", "older"])) if previous else "newer"
    if how == "same":
        return dict(previous)
    hour = {"newer": 8 + 2 * version, "tie": None, "older": 7}[how]
    updated = previous["updated_at"] if how == "tie" else at("2026-07-10", f"{hour:02d}:00")
    maintenance = tid == "T0"
    status = draw(st.sampled_from(STATUSES))
    done = status in ("RESOLVED", "CLOSED")
    fields = dict(
        ticket_type="maintenance" if maintenance else "incident", status=status, updated_at=updated,
        assignee=draw(st.sampled_from(PEOPLE)), assignment_group=draw(st.sampled_from(GROUPS)),
        resolved_at=at("2026-07-10", "06:00") if done else "", closed_at="", first_response_at="",
        caused_by="" if maintenance else draw(st.sampled_from(["", "T0"])))
    if maintenance:
        fields.update(planned_start=at("2026-07-09", "20:00"), planned_end=at("2026-07-09", "22:00"))
    opened = at(f"2026-07-0{1 + int(tid[1:])}", "09:00")
    return _ticket(tid, opened, **fields)


def _events(draw, known: list[str], sent: list[dict]) -> list[dict]:
    """Events of tickets already exported: new ones (minute ties likely), a flip A -> B -> A in one
    minute, and some of the history already sent, sent again."""
    new = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["status", "group", "assignee"]))
        values = {"status": STATUSES, "group": GROUPS, "assignee": PEOPLE}[kind]
        new.append(dict(ticket_id=draw(st.sampled_from(known)), at=at("2026-07-10", f"0{draw(st.integers(1, 3))}:00"),
                        kind=kind, value=draw(st.sampled_from(values)), actor="调度"))
    if draw(st.booleans()):
        tid, minute, kind = draw(st.sampled_from(known)), draw(st.integers(1, 3)), draw(st.sampled_from(["group", "status"]))
        a, b = ("桌面组", "网络组") if kind == "group" else ("RESOLVED", "IN_PROGRESS")
        new += [dict(ticket_id=tid, at=at("2026-07-10", f"0{minute}:30"), kind=kind, value=v, actor="调度")
                for v in (a, b, a)]
    again = draw(st.lists(st.sampled_from(sent), max_size=4)) if sent else []
    return again + new


@st.composite
def nights(draw) -> list[tuple[list[dict], list[dict]]]:
    """Two or three nights of (tickets, events) exports."""
    ids = [f"T{i}" for i in range(draw(st.integers(2, 4)))]
    latest: dict[str, dict] = {}
    sent: list[dict] = []
    out = []
    for night in range(draw(st.integers(2, 3))):
        exported = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True))
        tickets = [_copy(draw, tid, night, latest.get(tid)) for tid in exported]
        for t in tickets:
            latest.setdefault(t["ticket_id"], t)
            if t["updated_at"] >= latest[t["ticket_id"]]["updated_at"]:
                latest[t["ticket_id"]] = t
        events = _events(draw, sorted(latest), sent)
        sent += events
        out.append((tickets, events))
    return out


def _stores_after(root: Path, days: list[tuple[list[dict], list[dict]]], *, nightly: bool) -> dict:
    exports = root / "exports"
    root.mkdir(parents=True)
    config = write_config(root, f"sqlite:///{root / 'kpi.sqlite'}", sources={"helpdesk": exports}, store=root / "store")
    as_ofs = [DAY1_AS_OF + pd.Timedelta(days=i) for i in range(len(days))]
    for i, (tickets, events) in enumerate(days):
        write_export(exports, f"night-{i}", tickets, events)
        if nightly:
            run_job(load(config), kind="run", as_of=as_ofs[i])
    if not nightly:
        run_job(load(config), kind="backfill", as_of=as_ofs[-1], window=WINDOW)
    return snapshot(config)


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A table's rows in one order that does not depend on how it was written."""
    text = frame.astype("str")
    return text.sort_values(list(text.columns), ignore_index=True)


@hsettings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(nights())
def test_any_nights_leave_the_stores_as_one_backfill_of_their_files(days) -> None:
    with tempfile.TemporaryDirectory(prefix="nights-") as tmp:
        after_nights = _stores_after(Path(tmp) / "nightly", days, nightly=True)
        after_backfill = _stores_after(Path(tmp) / "backfill", days, nightly=False)
    assert after_nights.keys() == after_backfill.keys()
    for table in after_nights:
        pd.testing.assert_frame_equal(_rows(after_nights[table]), _rows(after_backfill[table]), obj=str(table))
