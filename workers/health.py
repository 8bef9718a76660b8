"""``compute-actions health``: exit 0 when healthy, 1 when not, with one line saying why (compose healthchecks).

- ``health --worker NAME``: the worker ``NAME`` (Celery's ``-n``; ``%h``, ``%n``, ``%d`` are expanded
  as Celery expands them) has a heartbeat that has not expired; when its record names this machine,
  its process must also still exist.
- ``health [--url URL]``: the URL answers 200; by default the API's ``/readyz`` (store and broker
  reachable, enough workers beating). ``http://user:password@host/`` sends basic auth (Flower).
"""
from __future__ import annotations

import base64
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from compute.settings import Settings
from compute.store import Store

DEFAULT_URL = "http://127.0.0.1:8774/readyz"


def expand_node_name(name: str) -> str:
    from celery.utils.nodenames import host_format

    return host_format(name)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_worker(settings: Settings, name: str, timeout: float = 2.0) -> tuple[bool, str]:
    node = expand_node_name(name)
    client = redis.Redis.from_url(settings.redis.store_url, decode_responses=True, socket_timeout=timeout,
                                  socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    store = Store(client, prefix=settings.redis.key_prefix)
    try:
        beat = store.get_heartbeat(node)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return False, f"worker {node}: the store is unreachable ({type(exc).__name__}: {exc})"
    finally:
        client.close()
    if beat is None:
        return False, f"worker {node}: no heartbeat in the last {settings.health.heartbeat_ttl_seconds:g} s"
    if beat.hostname == socket.gethostname() and not process_exists(beat.pid):
        return False, f"worker {node}: its process {beat.pid} is gone (last beat {beat.time})"
    return True, f"worker {node}: alive (pid {beat.pid}, last beat {beat.time})"


def check_url(url: str = DEFAULT_URL, timeout: float = 2.0) -> tuple[bool, str]:
    """Healthy when ``url`` answers 200; ``user:password@`` in it is sent as HTTP basic auth (Flower)."""
    parts = urllib.parse.urlsplit(url)
    headers = {}
    if parts.username is not None:
        credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200, f"{url}: {response.status} {_excerpt(response.read(300))}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code} {_excerpt(exc.read(300))}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: not answering ({exc})"


def _excerpt(body: bytes) -> str:
    return " ".join(body.decode(errors="replace").split())[:200]


def run_health(settings: Settings, worker: str | None, url: str | None, timeout: float) -> int:
    ok, message = check_worker(settings, worker, timeout) if worker else check_url(url or DEFAULT_URL, timeout)
    print(message, flush=True)
    return 0 if ok else 1
