"""The SVG helper: round axis steps, bars as tall as their values, stacks that add up, escaped labels."""

import re

from postdesk.reports.charts import Series, bar_chart, line_chart, nice_ticks


def heights(svg: str) -> dict[str, float]:
    return {
        title: float(h)
        for h, title in re.findall(
            r'<rect class="series-\d" [^>]*height="([\d.]+)"><title>([^<]+)</title>', svg
        )
    }


def test_axis_steps_are_round_and_reach_the_top():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(9) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(512) == [0, 200, 400, 600]
    assert nice_ticks(1000) == [0, 200, 400, 600, 800, 1000]


def test_grouped_bars_are_proportional_to_their_values():
    svg = bar_chart(["alice", "bob"], [Series("Sent", [10, 5]), Series("Opened", [2, 0])], title="Sent")
    h = heights(svg)
    assert h["alice · Sent: 10"] == 2 * h["bob · Sent: 5"] == 5 * h["alice · Opened: 2"]
    assert h["bob · Opened: 0"] == 0
    assert svg.startswith("<svg") and 'aria-label="Sent"' in svg and "style=" not in svg


def test_stacked_bars_add_up_and_skip_zeros():
    svg = bar_chart(["a", "b"], [Series("x", [3, 0]), Series("y", [1, 4])], title="t", stacked=True)
    h = heights(svg)
    assert "b · x: 0" not in h
    assert abs(h["a · x: 3"] + h["a · y: 1"] - h["b · y: 4"]) < 0.2


def test_labels_and_titles_are_escaped():
    evil = '<script>alert("x")</script>'
    svg = bar_chart([evil], [Series(evil, [1])], title=evil) + line_chart(
        [evil], [Series(evil, [1])], title=evil
    )
    assert "<script>" not in svg and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg


def test_a_long_line_writes_some_labels_and_no_dots():
    labels = [f"d{i}" for i in range(90)]
    svg = line_chart(labels, [Series("Sent", list(range(90)))], title="Daily")
    assert svg.count("<polyline") == 1 and "<circle" not in svg
    assert 10 <= len(re.findall(r'<text class="label"', svg)) <= 16
