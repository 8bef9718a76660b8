"""How far the bytes an action moves have got, read from where the API shows them.

A live migration's memory and disk (``/servers/{id}/migrations``), a cold migration's disk copy
(the server's ``progress`` and its flavor), a backup's upload (its image's ``progress``): each
phase keeps its own reading here, so workers/watch.py only picks the phase.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.api_client import ApiError, Client
from workers.instance_actions import parse_time, version_tuple

IMAGES_VERSION = "2.35"  # Nova's image proxy stops at 2.35
GIB = 1 << 30


@dataclass
class Progress:
    fraction: float | None  # 0..1, None when unknown
    processed: int | None = None  # bytes
    total: int | None = None
    what: str = ""

    def text(self) -> str:
        parts = []
        if self.what:
            parts.append(self.what)
        if self.total:
            parts.append(f"{human_bytes(self.processed or 0)} of {human_bytes(self.total)}")
        return " ".join(parts)


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def live_copy_progress(client: Client, server: dict[str, Any], mv: str) -> Progress | None:
    """The running live migration's bytes (admins, 2.23+); else the server's progress, once it moved."""
    if version_tuple(mv) >= (2, 23):
        try:
            found = client.get(f"/servers/{server['id']}/migrations", microversion=mv)["migrations"]
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
            found = []
        for migration in found:
            memory, disk = migration.get("memory_total_bytes") or 0, migration.get("disk_total_bytes") or 0
            if memory + disk:
                done = (migration.get("memory_processed_bytes") or 0) + (migration.get("disk_processed_bytes") or 0)
                what = "memory+disk" if disk else "memory"
                return Progress(min(1.0, done / (memory + disk)), done, memory + disk, what)
        if found:
            return None  # queued or preparing: nothing moves yet
    shown = server_progress(server, "")
    return shown if shown is not None and shown.fraction else None


def server_progress(server: dict[str, Any], what: str) -> Progress | None:
    value = server.get("progress")
    return None if value is None else Progress(min(100, max(0, int(value))) / 100, what=what)


def cold_copy_progress(server: dict[str, Any]) -> Progress | None:
    """The server's progress is the disk copy's; the flavor (2.47+) gives its size."""
    shown = server_progress(server, "disk")
    if shown is None:
        return None
    flavor = server.get("flavor") or {}
    gib = (flavor.get("disk") or 0) + (flavor.get("ephemeral") or 0)
    if gib and shown.fraction is not None:
        shown.total = gib * GIB
        shown.processed = int(shown.total * shown.fraction)
    return shown


def backup_progress(client: Client, server: dict[str, Any], since: float | None) -> Progress | None:
    try:
        images = client.get("/images/detail", microversion=IMAGES_VERSION, query={"server": server["id"]})["images"]
    except ApiError:
        return None
    saving = [i for i in images if i.get("status") == "SAVING"
              and (since is None or (parse_time(i.get("created")) or 0) >= since - 1)]
    if not saving:
        return None
    image = max(saving, key=lambda i: parse_time(i.get("created")) or 0)
    percent = min(100, int(image.get("progress") or 0))
    # 0 until the engine reports upload progress on the image: shown as "saving", not as a stuck 0%
    return Progress(percent / 100 if percent else None, what=f"image {image.get('name')} saving")
