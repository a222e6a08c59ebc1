"""The v2 sections' bar charts (pipeline/analyst/report_bars.py): stacking and scales worked by hand."""

from __future__ import annotations

from pipeline.analyst.report_bars import RateBar, rate_bars, stacked_columns, stacked_hbars
from pipeline.analyst.report_charts import PALETTE, Bar, Label, Series, hbar_chart


def bars(chart) -> list[Bar]:
    return [m for m in chart.marks if isinstance(m, Bar)]


def test_stacked_columns_stack_each_series_on_the_ones_before() -> None:
    chart = stacked_columns(["a", "b"], [Series("x", [1, 3], "#111"), Series("y", [2, 0], "#222")], title="t")
    # totals 3 and 3; grid step = nice(3 x 1.1 / 4 = 0.825) = 1, top = 1 x ceil(3.3) = 4;
    # the plot runs from y 186 (0) up to 16 (4): 42.5 px a ticket
    drawn = [(b.fill, round(b.height, 1), round(b.y, 1)) for b in bars(chart)]
    assert drawn == [
        ("#111", 42.5, 143.5),  # a: x = 1 at the bottom
        ("#222", 85.0, 58.5),  # a: y = 2 on top of it
        ("#111", 127.5, 58.5),  # b: x = 3; y = 0 draws nothing
    ]
    assert [m.text for m in chart.marks if isinstance(m, Label) and m.color == PALETTE["ink"]] == ["3", "3"]


def test_stacked_hbars_scale_to_a_round_maximum_and_skip_missing_values() -> None:
    chart = stacked_hbars(["t1", "t2"], [Series("x", [2, 1], "#111"), Series("y", [2, None], "#222")], title="t")
    # totals 4 and 1; scale top = nice(4 / 4) x 4 = 4; labels are narrow, so the left margin is 60 + 16 = 76
    # and the bars get 640 - 76 - 64 = 500 px: 125 px a unit
    assert [(b.fill, round(b.x, 1), round(b.width, 1)) for b in bars(chart)] == [
        ("#111", 76.0, 250.0), ("#222", 326.0, 250.0), ("#111", 76.0, 125.0)
    ]
    totals = [m.text for m in chart.marks if isinstance(m, Label) and m.x > 76]
    assert totals[-2:] == ["4.0", "1.0"]  # after each bar, with the table's one decimal


def test_stacked_hbars_total_keeps_its_decimal_when_it_rounds_to_a_whole_number() -> None:
    chart = stacked_hbars(["t1"], [Series("x", [57.9997], "#111")], title="t")
    assert [m.text for m in chart.marks if isinstance(m, Label)][-1] == "58.0"  # it showed "58"


def test_rate_bars_mark_a_miss_and_a_missing_rate() -> None:
    chart = rate_bars([RateBar("A", 0.95, "20 judged"), RateBar("B", 0.5, "2 judged"), RateBar("C", None, "0")],
                      title="t", target=0.9)
    fills = [b.fill for b in bars(chart)]
    assert fills == [PALETTE["accent"], PALETTE["bad"]]  # C has no bar
    texts = [m.text for m in chart.marks if isinstance(m, Label)]
    assert "95.0%  20 judged" in texts and "50.0%  2 judged" in texts and "—  0" in texts


def test_the_ranking_cuts_a_long_name_and_keeps_room_for_its_note() -> None:
    long = "A" * 60  # 60 x 7.2 px = 432 px: wider than the 190 px a label may take
    chart = hbar_chart([(long, 100.0, True), ("李娜", 80.0, False)], title="t", note="not ranked")
    names = [m for m in chart.marks if isinstance(m, Label) and m.anchor == "end"]
    assert names[0].text.endswith("…") and len(names[0].text) < 30 and names[1].text == "李娜"
    assert names[0].x == 190 + 16 - 8  # the margin grew to the widest label allowed, the label ends 8 px before
    (note,) = [m for m in chart.marks if isinstance(m, Label) and m.text.endswith("not ranked")]
    assert note.text == "100.0  not ranked"
    # "100.0  not ranked" is 17 characters, about 112 px at 11 px: it ends inside the 640 px wide chart
    assert note.x + 17 * 11 * 0.6 <= chart.width
