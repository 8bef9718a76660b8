"""The bench runner's arguments, ratios, targets and table (no bench is run here)."""
from __future__ import annotations

import argparse

import pytest

from bench import run as bench_run

Figure = bench_run.Figure


def test_default_runs_every_section_in_order() -> None:
    args = bench_run.parse_args([])
    assert args.only == list("abcdefg")
    assert args.quick is False and args.markdown is None


@pytest.mark.parametrize("given", ["d,a", "da", "d a", "a,d,a"])
def test_only_takes_letters_in_any_spelling(given: str) -> None:
    assert bench_run.parse_args(["--quick", "--only", given]).only == ["a", "d"]


@pytest.mark.parametrize("given", ["x", "a,z", ","])
def test_unknown_sections_are_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        bench_run.sections(given)
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--only", given])


def test_ratio_and_targets() -> None:
    fast = Figure("a", "accepted/s", 70.0, "floor", 100.0, "/s", ">= 0.7")
    slow = Figure("a", "accepted/s", 69.0, "floor", 100.0, "/s", ">= 0.7")
    assert fast.ratio == pytest.approx(0.7) and fast.met is True
    assert slow.met is False
    assert Figure("a", "p99", 20.0, "floor p99", 10.0, "ms", "<= 2").met is True
    assert Figure("a", "p99", 21.0, "floor p99", 10.0, "ms", "≤ 2").met is False
    assert Figure("a", "p50", 21.0, "floor p50", 10.0, "ms").met is None
    assert Figure("a", "p50", 1.0, "floor p50", 0.0).ratio == float("inf")


def test_line_says_missed() -> None:
    line = Figure("b", "backup", 10.0, "no-op", 100.0, "/s", ">= 0.5").line()
    assert "ratio 0.10" in line and line.endswith("MISSED")


def test_markdown_table_has_a_row_per_figure() -> None:
    table = bench_run.markdown_table([Figure("e", "GET server", 2.5, "5 hosts", 2.0, "ms", "<= 1.2"),
                                      Figure("g", "bytes", 1953.0, "record", 1016.0, "B")])
    rows = table.splitlines()
    assert rows[0].startswith("| bench | figure |") and len(rows) == 4
    assert "| e | GET server | 2.5 ms | 5 hosts | 2.0 ms | 1.25 | ≤ 1.2 | **no** |" == rows[2]
    assert rows[3].endswith("| 1.92 |  |  |")


def test_figures_from_another_bench_main() -> None:
    got = bench_run.figures_from([{"name": "select at 10,000", "value": 4.0, "floor_name": "at 10",
                                   "floor": 2.0, "unit": "ms", "target": "<= 5"}, "ignored"], "c")
    assert [(f.bench, f.ratio, f.met) for f in got] == [("c", 2.0, True)]
    assert bench_run.figures_from(None, "c") == [] and bench_run.figures_from("text", "c") == []


def test_report_holds_machine_table_and_notes() -> None:
    text = bench_run.report([Figure("f", "dev p50", 3.0, "production p50", 2.0, "ms", "<= 2")],
                            ["(f) five runs"], {"date": "2026-12-02 05:00 UTC", "nproc": "2"}, 90.0, True)
    assert text.startswith("Run of 2026-12-02 05:00 UTC (--quick), 1.5 min.")
    assert "| nproc | 2 |" in text and "| f | dev p50 |" in text and "- (f) five runs" in text
