"""How ``watch`` shows what it follows: plain lines for logs, CI and pipes, or a rich live display.

Both take the same calls (an event started or finished, a phase's progress, the result), so the
following in workers/watch.py does not care which one draws.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, TextIO

from workers.instance_actions import Event
from workers.watch_progress import Progress


def event_label(event: Event) -> str:
    return f"{event.name} on {event.host}" if event.host else event.name


class PlainOutput:
    """One line per change: for logs, CI and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.began = time.monotonic()
        self.buckets: dict[tuple[Any, ...], int] = {}

    def line(self, text: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {text}", file=self.stream, flush=True)

    def header(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, event: Event) -> None:
        self.line(f"start    {event_label(event)}")

    def finished(self, event: Event) -> None:
        took = f" ({event.seconds:.1f}s)" if event.seconds is not None else ""
        why = f": {event.details}" if event.failed and event.details else ""
        self.line(f"{(event.result or 'done'):<8} {event_label(event)}{took}{why}")

    def progress(self, phase: str, shown: Progress) -> None:
        """A line each time the phase passes another tenth (and at its first sight)."""
        bucket = -1 if shown.fraction is None else int(shown.fraction * 10)
        if self.buckets.get(phase) == bucket:
            return
        self.buckets[phase] = bucket
        percent = "" if shown.fraction is None else f"{int(shown.fraction * 100):3d}% "
        self.line(f"progress {phase} {percent}{shown.text()}".rstrip())

    def phases_done(self, success: bool) -> None:
        pass

    def result(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichOutput:
    """A rich display: each event's start and end as a line, a spinner while it runs, a bar per copy."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import (
            BarColumn,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        from workers.api_client import console

        self.console = console(True, stream)
        self.display = RichProgress(SpinnerColumn(finished_text="[green]✔"), TextColumn("{task.description}"),
                                    BarColumn(bar_width=30), TaskProgressColumn(), TextColumn("{task.fields[detail]}"),
                                    TimeElapsedColumn(), console=self.console, transient=False)
        self.running: dict[tuple[Any, ...], Any] = {}
        self.phases: dict[str, Any] = {}
        self.last_shown: dict[str, Progress] = {}
        self.display.start()

    def header(self, text: str) -> None:
        self.display.console.print(text)

    def started(self, event: Event) -> None:
        self.display.console.print(f"[cyan]▶[/] {event_label(event)}")
        self.running[event.key] = self.display.add_task(f"[cyan]{event_label(event)}", total=None, detail="")

    def finished(self, event: Event) -> None:
        task = self.running.pop(event.key, None)
        if task is not None:
            self.display.remove_task(task)
        took = f" ({event.seconds:.1f}s)" if event.seconds is not None else ""
        if event.failed:
            why = f": {event.details}" if event.details else ""
            self.display.console.print(f"[red]✘ {event_label(event)}{took}{why}[/]")
        else:
            self.display.console.print(f"[green]✔[/] {event_label(event)}{took}")

    def progress(self, phase: str, shown: Progress) -> None:
        self.last_shown[phase] = shown
        if phase not in self.phases:
            self.phases[phase] = self.display.add_task(f"[magenta]{phase}", total=None, detail="")
        if shown.fraction is None:
            self.display.update(self.phases[phase], detail=shown.text())
        else:
            self.display.update(self.phases[phase], total=100, completed=shown.fraction * 100, detail=shown.text())

    def phases_done(self, success: bool) -> None:
        """A copy seen last at 90% that the action got past (it succeeded) did reach its end: its bar
        and its bytes say so."""
        for phase, task in self.phases.items():
            if success:
                last = self.last_shown.get(phase)
                if last is not None and last.total:
                    last = dataclasses.replace(last, fraction=1.0, processed=last.total)
                done = "" if last is None else last.text()
                self.display.update(task, total=100, completed=100, detail=done)
            self.display.stop_task(task)

    def result(self, text: str) -> None:
        """Last, below the bars: the display stops (drawing them as they ended) before the line is printed."""
        self.close()
        style = "green" if text.startswith("Result: Success") else "red"
        self.console.print(f"[bold {style}]{text}[/]")

    def close(self) -> None:
        if self.display.live.is_started:
            self.display.stop()
