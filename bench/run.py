"""The benchmark suite: every figure of issue 12 item 8 as a ratio against a floor measured in the same run.

    .venv/bin/python -m bench.run [--quick] [--only a,d] [--markdown bench/latest.md]

Sections (each its own module, runnable alone; bench/README.md says what each measures):

  a  API accept rate and p50/p99 under gunicorn vs a floor app (wrk)      bench/api_accept.py
  b  fast actions through real workers vs Celery no-op tasks              bench/fast_actions.py
  c  placement at 10 .. 100,000 hosts                                     bench/placement.py
  d  1,000 in-flight 30 s live migrations on 2 worker processes           bench/inflight_live_migrations.py
  e  GET server and lists at 5 vs 10,000 hosts, 10,000 actions vs 10      bench/views.py
  f  dev vs production per action                                         bench/dev_vs_production.py
  g  Redis memory per server and per in-flight action                     bench/redis_memory.py

Needs Redis on 127.0.0.1:6379 (``BENCH_REDIS`` to change; dbs 10-15, a fresh key prefix each) and
wrk for (a). The whole suite took 6-9 minutes on 2 cores shared with other work; ``--quick`` about 3.
At the end it prints, and with ``--markdown`` writes, the machine and the table for bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from common import Figure, machine, markdown_table

SECTIONS = {
    "a": ("API accept rate under gunicorn", "api_accept"),
    "b": ("fast actions through real workers", "fast_actions"),
    "c": ("placement", "placement"),
    "d": ("in-flight live migrations", "inflight_live_migrations"),
    "e": ("reads vs fleet and history size", "views"),
    "f": ("dev vs production", "dev_vs_production"),
    "g": ("Redis memory", "redis_memory"),
}

Result = tuple[list[Figure], list[str]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes instead of 6-9)")
    parser.add_argument("--only", default="".join(SECTIONS), type=sections,
                        help="the sections to run, e.g. 'a,d' (default: all)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the machine and the table to PATH")
    return parser.parse_args(argv)


def sections(value: str) -> list[str]:
    chosen = [s.strip().lower() for s in value.replace(",", " ").split() if s.strip()]
    if len(chosen) == 1 and len(chosen[0]) > 1:  # "ad" as well as "a,d"
        chosen = list(chosen[0])
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown or value!r}; choose from {','.join(SECTIONS)}")
    return sorted(set(chosen), key=list(SECTIONS).index)


def figures_from(returned: object, section: str) -> list[Figure]:
    """Figures from what another bench's ``main`` returned: Figures, or dicts with Figure's fields."""
    if not isinstance(returned, Iterable) or isinstance(returned, (str, bytes, dict)):
        return []
    found = []
    for item in returned:
        if isinstance(item, Figure):
            found.append(item)
        elif isinstance(item, dict) and {"name", "value", "floor_name", "floor"} <= item.keys():
            found.append(Figure(section, str(item["name"]), float(item["value"]), str(item["floor_name"]),
                                float(item["floor"]), str(item.get("unit", "")), str(item.get("target", ""))))
        elif hasattr(item, "ratio") and hasattr(item, "name") and hasattr(item, "value"):
            found.append(Figure(section, str(item.name), float(item.value), str(getattr(item, "floor_name", "floor")),
                                float(getattr(item, "floor", 0.0)), str(getattr(item, "unit", "")),
                                str(getattr(item, "target", ""))))
    return found


def run_placement(quick: bool) -> Result:
    """bench/placement.py is another's: call its ``main(argv)``, keep what it prints and any figures it returns."""
    if not (ROOT / "bench" / "placement.py").exists():
        print("placement: not available")
        return [], ["(c) placement: not available (bench/placement.py does not exist yet)"]
    module = importlib.import_module("placement")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        returned = module.main(["--quick"] if quick else [])
    return figures_from(returned, "c"), [f"(c) {line}" for line in out.getvalue().splitlines() if line.strip()]


def runner(section: str) -> Callable[[bool], Result]:
    if section == "c":
        return run_placement
    return importlib.import_module(SECTIONS[section][1]).run


def report(figures: list[Figure], notes: list[str], about: dict[str, str], took: float, quick: bool) -> str:
    lines = [f"Run of {about['date']}{' (--quick)' if quick else ''}, {took / 60:.1f} min.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in about.items() if key != "date"]
    lines += ["", markdown_table(figures), "", "Notes printed by the run:", ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    about = machine()
    about["load average (start)"] = about.pop("load average")
    began = time.monotonic()
    figures: list[Figure] = []
    notes: list[str] = []
    failed = []
    for section in args.only:
        title = SECTIONS[section][0]
        print(f"== ({section}) {title}", flush=True)
        started = time.monotonic()
        try:
            got, said = runner(section)(args.quick)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one failed bench (its SystemExit too) must not stop the rest
            failed.append(section)
            said, got = [f"({section}) FAILED: {exc!r}"], []
            traceback.print_exc()
        for line in [*said, *(f.line() for f in got)]:
            print(line, flush=True)
        print(f"   ({section}) took {time.monotonic() - started:.0f} s", flush=True)
        figures += got
        notes += said
    took = time.monotonic() - began
    about["load average (end)"] = machine()["load average"]
    text = report(figures, notes, about, took, args.quick)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
