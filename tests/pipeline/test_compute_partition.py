"""The partition hash: SipHash-2-4 (key "itsm-kpi:part:v1") of "source\\x1fticket_id", mixed by pandas'
64-bit finaliser, modulo partitions.

A SipHash-2-4 written out here from its paper (Aumasson & Bernstein, 2012) checks the engine's hash, so the
partition of a ticket is fixed by its text alone (any process, any machine, any pandas that keeps SipHash);
a few keys' partitions are pinned as numbers.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from compute_helpers import AS_OF, bench_settings, generated
from hypothesis import given, settings
from hypothesis import strategies as st
from siphash_reference import key_hash, siphash24

from kpis import compute_facts
from pipeline.compute.partition import (
    TicketPartitions,
    facts_events,
    key_hashes,
    named_maintenance,
    partition_of,
    split,
    with_causes,
)


def test_reference_siphash_matches_the_papers_test_vector() -> None:
    # Appendix A: key 00 01 .. 0f, message 00 01 .. 0e (15 bytes) -> a129ca6149be45e5
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


KEYS = [("helpdesk", "INC-1"), ("helpdesk", "INC-2"), ("sn", "INC0010001"), ("jira", "工单-7"), ("a", "")]
PINNED_7 = [2, 5, 6, 3, 5]
PINNED_64 = [48, 25, 60, 2, 2]


def test_engine_hash_is_siphash_of_the_key_text() -> None:
    frame = pd.DataFrame(KEYS, columns=["source", "ticket_id"])
    expected = [key_hash(s, t) for s, t in KEYS]
    assert key_hashes(frame["source"], frame["ticket_id"]).tolist() == expected


def test_pinned_partitions() -> None:
    """The partitions of a few keys, pinned (worked out with ``siphash24`` above, not with the engine):
    ("helpdesk", "INC-1") hashes to 4714470575071805424 = 7 * 673495796438829346 + 2 -> partition 2 of 7,
    and its low 6 bits are 0b110000 = 48 -> partition 48 of 64."""
    assert key_hash("helpdesk", "INC-1") == 4714470575071805424
    frame = pd.DataFrame(KEYS, columns=["source", "ticket_id"])
    assert partition_of(frame["source"], frame["ticket_id"], 7).tolist() == PINNED_7
    assert partition_of(frame["source"], frame["ticket_id"], 64).tolist() == PINNED_64
    assert partition_of(frame["source"], frame["ticket_id"], 1).tolist() == [0] * len(KEYS)


def test_same_partitions_in_another_process() -> None:
    """Python's own ``hash`` of a string changes per process; the partition does not."""
    code = ("import pandas as pd; from pipeline.compute.partition import partition_of; "
            f"f = pd.DataFrame({KEYS!r}, columns=['source', 'ticket_id']); "
            "print(partition_of(f['source'], f['ticket_id'], 64).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout
    assert out.strip() == str(PINNED_64)


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_of(pd.Series(["a"]), pd.Series(["1"]), 0)


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=40, unique=True),
       partitions=st.integers(1, 9))
def test_split_takes_every_ticket_and_its_events_once(ids: list[str], partitions: int) -> None:
    tickets = pd.DataFrame({"source": "s", "ticket_id": ids})
    events = pd.DataFrame({"source": "s", "ticket_id": ids + ids[:3]})
    parts = list(split(tickets, events, partitions))
    positions = np.concatenate([p.positions for p in parts])
    assert sorted(positions.tolist()) == list(range(len(ids)))
    for part in parts:
        assert (partition_of(part.tickets["source"], part.tickets["ticket_id"], partitions) == part.number).all()
        assert set(part.events["ticket_id"]) <= set(part.tickets["ticket_id"])
    assert sum(len(p.events) for p in parts) == len(events)


def test_an_event_goes_with_its_ticket_and_one_of_no_ticket_nowhere() -> None:
    tickets = pd.DataFrame({"source": ["s", "s", "t"], "ticket_id": ["1", "2", "1"]})
    events = pd.DataFrame({"source": ["t", "s", "s", "x", "s"], "ticket_id": ["1", "2", "9", "1", "1"],
                           "n": [0, 1, 2, 3, 4]})
    by_ticket = TicketPartitions.of(tickets, 64)
    parts = {p.number: p for p in split(tickets, events, 64, by_ticket)}
    for part in parts.values():
        own = set(zip(part.tickets["source"], part.tickets["ticket_id"], strict=True))
        assert set(zip(part.events["source"], part.events["ticket_id"], strict=True)) <= own
    # events 2 (s/9) and 3 (x/1) name no ticket: in no partition; the other three each in one
    assert sorted(n for part in parts.values() for n in part.events["n"]) == [0, 1, 4]
    # rows follow their ticket's hash partition, the same one a hash of the row's own key gives
    rows = by_ticket.rows_of(events)
    assert [number for number, r in enumerate(rows) for _ in r] == sorted(
        partition_of(events["source"], events["ticket_id"], 64)[[0, 1, 4]].tolist())


def test_broadcast_holds_the_named_maintenance_tickets_only() -> None:
    tickets = pd.DataFrame({
        "source": ["a", "a", "a", "b", "a"],
        "ticket_id": ["M1", "M2", "I1", "I2", "R1"],
        "ticket_type": ["maintenance", "maintenance", "incident", "incident", "request"],
        "caused_by": [None, None, "M1", "M2", "M2"],  # b:I2 names b:M2 (none); a:R1 names a:M2 (a request may name)
    })
    assert named_maintenance(tickets)["ticket_id"].tolist() == ["M1", "M2"]
    # a partition holding I1 reads M1 beside it; one holding M1 itself adds nothing
    assert with_causes(tickets.iloc[[2]], named_maintenance(tickets))["ticket_id"].tolist() == ["I1", "M1"]
    assert with_causes(tickets.iloc[[0, 2]], named_maintenance(tickets))["ticket_id"].tolist() == ["M1", "I1"]


def test_the_local_engine_imports_no_dask() -> None:
    """``pip install itsm-kpi`` without the extra: a whole partitioned demo run never imports Dask."""
    code = ("import sys, tempfile, pathlib, dataclasses, pandas as pd\n"
            "from pipeline.cli import demo_settings\n"
            "from pipeline.jobs import run_job\n"
            "from pipeline.settings import ComputeSettings\n"
            "root = pathlib.Path(tempfile.mkdtemp())\n"
            "s = dataclasses.replace(demo_settings(root), compute=ComputeSettings(partitions=3))\n"
            "run_job(s, kind='demo', as_of=pd.Timestamp('2026-07-31T00:00:00Z'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _keyed(n: int) -> pd.DataFrame:
    return pd.DataFrame({"source": pd.Series(["s", "t"] * (n // 2), dtype="str"),
                         "ticket_id": pd.Series([str(i) for i in range(n)], dtype="str")})


def test_the_same_tickets_split_again_are_not_hashed_again() -> None:
    tickets = _keyed(200)
    first = TicketPartitions.of(tickets, 7)
    again = TicketPartitions.of(tickets.reset_index(drop=True), 3)  # a run's ops tables split the same columns
    assert again.keys is first.keys  # the keys (and their hashes) of the first split
    assert (again.partition == partition_of(tickets["source"], tickets["ticket_id"], 3)).all()
    assert (first.partition == partition_of(tickets["source"], tickets["ticket_id"], 7)).all()


def test_equal_tickets_in_other_arrays_and_tickets_gone_are_hashed_anew() -> None:
    import gc

    import pipeline.compute.partition as partition

    tickets = _keyed(200)
    first = TicketPartitions.of(tickets, 7)
    copy = _keyed(200)  # the same keys, in arrays of their own
    other = TicketPartitions.of(copy, 7)
    assert other.keys is not first.keys and (other.partition == first.partition).all()
    del tickets, copy, first, other
    gc.collect()
    assert partition._LAST_SPLIT._last is None  # the hashes went with the columns
    shorter = _keyed(100)
    assert (TicketPartitions.of(shorter, 7).partition == partition_of(shorter["source"], shorter["ticket_id"], 7)).all()


def test_tickets_over_the_same_buffers_in_new_arrays_are_not_hashed_again() -> None:
    # pandas 3.0's reset_index wraps the same buffers in a new Arrow array: still the same tickets
    import pyarrow as pa

    tickets = _keyed(200)
    first = TicketPartitions.of(tickets, 7)
    arrays = {c: tickets[c].array.__arrow_array__() for c in ("source", "ticket_id")}
    rewrapped = pd.DataFrame({c: pd.Series(pd.array(pa.chunked_array(a.chunks), dtype=tickets[c].dtype))
                              for c, a in arrays.items()})
    assert rewrapped["ticket_id"].array.__arrow_array__() is not arrays["ticket_id"]
    assert TicketPartitions.of(rewrapped, 7).keys is first.keys
    shifted = _keyed(202).iloc[2:].reset_index(drop=True)  # other buffers (and offsets): hashed anew
    assert TicketPartitions.of(shifted, 7).keys is not first.keys


def test_the_facts_split_only_the_event_columns_they_read() -> None:
    """The actor and the source's event id are no input of the facts: leaving them out of what is split (and
    shipped to Dask workers) changes no fact, whatever those columns hold."""
    tickets, events = generated(300)
    events["actor"] = pd.array([f"someone {i % 7}" for i in range(len(events))], dtype="str")
    events["event_id"] = pd.array([f"ev{i}" for i in range(len(events))], dtype="str")
    read = facts_events(events)
    assert list(read.columns) == ["source", "ticket_id", "at", "kind", "value", "seq"]
    settings = bench_settings()
    pd.testing.assert_frame_equal(compute_facts(tickets, read, settings, AS_OF),
                                  compute_facts(tickets, events, settings, AS_OF))
