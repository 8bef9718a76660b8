"""What the operator commands (``watch``, ``actions``, ``fleet``) share: an HTTP client of any
compute endpoint, its options, and output that is rich on a terminal and plain lines elsewhere.

They talk HTTP only (the standard library's urllib: nothing to install), so they work against
``compute-actions dev``, a production deployment, or, for ``watch`` and ``actions``, any Nova.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TextIO

DEFAULT_ENDPOINT = "http://127.0.0.1:8774/v2.1"
DEFAULT_TOKEN = "admin:admin"
FLEET_PATH = "/compute-actions/v1/fleet"


class ApiError(Exception):
    """A refused or failed request: ``status`` 0 when the endpoint could not be reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}" if status else message)
        self.status = status
        self.message = message


def fault_message(status: int, raw: bytes) -> str:
    """The message of a Nova fault body (``{"badRequest": {"message": ...}}``), else the raw text."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError):
        return raw.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
    return json.dumps(body)[:500]


# (method, url, headers, body) -> (status, body): how a request is sent (tests pass a WSGI client's).
Transport = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]


class Client:
    def __init__(self, endpoint: str, token: str, *, timeout: float = 30.0, transport: Transport | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.transport = transport or self.urllib_transport

    def urllib_transport(self, method: str, url: str, headers: dict[str, str],
                         data: bytes | None) -> tuple[int, bytes]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"cannot reach {url}: {reason}") from None

    @property
    def root(self) -> str:
        """The endpoint without its ``/v2.1`` (where the non-Nova extensions live)."""
        endpoint = self.endpoint
        return endpoint.removesuffix("/v2.1")

    def fleet_url(self, path: str = "") -> str:
        return f"{self.root}{FLEET_PATH}{path}"

    def request(self, method: str, path: str, body: Any = None, *, microversion: str | None = None,
                query: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``path`` is relative to the endpoint, or a full URL. JSON in, JSON (or None) out."""
        url = path if path.startswith(("http://", "https://")) else f"{self.endpoint}{path}"
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(
                {k: v for k, v in query.items() if v is not None})
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
            headers["X-OpenStack-Nova-API-Version"] = microversion
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        status, raw = self.transport(method, url, headers, data)
        if status >= 400:
            raise ApiError(status, fault_message(status, raw))
        if not raw:
            return status, None
        try:
            return status, json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeError):
            raise ApiError(status, f"{method} {url} answered something that is not JSON") from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)[1]


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """``--endpoint`` and ``--token``, accepted at any level of a command (SUPPRESS keeps the outer value)."""
    parser.add_argument("--endpoint", default=argparse.SUPPRESS, metavar="URL",
                        help=f"compute endpoint (default: $OS_COMPUTE_API or {DEFAULT_ENDPOINT})")
    parser.add_argument("--token", default=argparse.SUPPRESS,
                        help=f"X-Auth-Token to send (default: $OS_TOKEN or {DEFAULT_TOKEN})")
    parser.add_argument("--output", choices=("auto", "rich", "plain"), default=argparse.SUPPRESS,
                        help="rich on a terminal, plain lines otherwise (auto, the default)")


def client_from(args: argparse.Namespace) -> Client:
    endpoint = getattr(args, "endpoint", None) or os.environ.get("OS_COMPUTE_API") or DEFAULT_ENDPOINT
    token = getattr(args, "token", None) or os.environ.get("OS_TOKEN") or DEFAULT_TOKEN
    return Client(endpoint, token)


def use_rich(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    mode = getattr(args, "output", None) or "auto"
    if mode != "auto":
        return mode == "rich"
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def console(rich_output: bool, stream: TextIO | None = None) -> Any:
    from rich.console import Console

    return Console(file=stream or sys.stdout, force_terminal=rich_output or None,
                   no_color=not rich_output, highlight=False, soft_wrap=not rich_output)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                rich_output: bool, stream: TextIO | None = None) -> None:
    """A rich table on a terminal; elsewhere a header and one aligned plain line per row."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    out = stream or sys.stdout
    if rich_output:
        from rich.table import Table

        table = Table(title=title)
        for index, name in enumerate(columns):
            last = index == len(columns) - 1
            table.add_column(name, overflow="fold" if last else "ellipsis", no_wrap=not last)
        for row in cells:
            table.add_row(*row)
        console(True, out).print(table)
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [columns, *cells]
    for row in lines:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)
    out.flush()


def print_json(value: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    print(json.dumps(value, indent=2, sort_keys=False), file=out)
    out.flush()


def print_json_if_asked(args: argparse.Namespace, value: Any) -> bool:
    """``--json``: print the API's answer as it came instead of a table or a line; True when it did."""
    if not args.json:
        return False
    print_json(value)
    return True


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code
