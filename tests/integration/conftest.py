"""Integration fixtures: the real Redis, real ``celery worker`` processes, one namespace per test.

Each test gets its own store key prefix (store db 1) and its own Celery queue (broker
db 0), so tests never see each other's records or messages, and everything they
created is deleted afterwards, including the broker's bookkeeping for their queue
(bindings and the ``unacked`` entries a killed worker leaves behind).

The broker is Redis unless a test is parametrised over ``broker_kind`` (``BOTH_BROKERS``):
then it also runs on RabbitMQ (``amqp://``, a quorum queue named for the test, deleted
with its exchange afterwards). Like Redis, RabbitMQ is required in CI: not answering
there fails the test instead of skipping it.

Workers are started as ``python -m workers.cli worker`` in their own process group,
so ``WorkerProcess.kill()`` (SIGKILL to the group) takes down the main process and
its pool child together, like a host dying. Their logs go to files under the test's
``tmp_path`` and are attached to the report of a failing test.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection

from compute.models import Instance
from compute.settings import CONFIG_DIR, REPO_ROOT, Settings
from compute.states import PowerState, VmState
from compute.store import Store
from tests.conftest import REAL_REDIS_URL, real_redis_or_fail
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for
from workers.runtime import Runtime, build_runtime

STORE_DB = 1
BROKER_DB = 0
# Generous: two noisy cores, and a celery worker takes seconds to boot on them.
WORKER_READY_TIMEOUT = 90.0
WORKER_STOP_TIMEOUT = 15.0

# Engine timings for the tests: short enough that a lost lease is noticed in seconds.
DEFAULT_ENGINE = {
    "lease_ttl_seconds": 3.0,
    "reaper_interval_seconds": 0.5,
    "start_grace_seconds": 5.0,
    "poll_interval_seconds": 0.3,
}
DURATION_SCALE = 0.1  # spawn: 2.0 s of simulated time -> 0.2 s
DELIVERY_LOGGER = "workers.celery_app"  # logs "action <rid> wake <n>: <outcome>" per delivery, at DEBUG

RABBITMQ_URL = os.environ.get("COMPUTE_ACTIONS_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ("redis", "rabbitmq")
# A test marked so runs once per broker (the namespace, runtime and workers follow).
BOTH_BROKERS = pytest.mark.parametrize("broker_kind", BROKERS)


# ---- helpers the tests share (waiting and contexts are in tests.support) ------------------------
def put_active_instance(store: Store, flavor_id: str = "1", host: str = "compute-kvm-1") -> Instance:
    """An ACTIVE server written straight into the store (no claim): a target for actions."""
    flavor = store.get_flavor(flavor_id)
    assert flavor is not None
    inst = Instance(name="seeded", project_id="demo", user_id="demo", flavor=flavor, image_id=IMAGE_ID,
                    host=host, node=host, vm_state=VmState.ACTIVE, task_state=None,
                    power_state=PowerState.RUNNING)
    store.put_instance(inst)
    return inst


# ---- one namespace per test ------------------------------------------------------------------------
@dataclass
class Namespace:
    token: str
    prefix: str
    queue: str
    settings: Settings
    store_client: redis.Redis
    broker_client: redis.Redis  # the Redis broker db (used only when broker_kind is redis)
    broker_kind: str = "redis"

    def queue_length(self) -> int:
        """Messages ready in this test's queue (on RabbitMQ, not counting those delivered and unacked)."""
        if self.broker_kind == "rabbitmq":
            return rabbitmq_ready_count(self.settings.redis.broker_url, self.queue)
        return sum(int(self.broker_client.llen(k)) for k in self.queue_keys())

    def lose_queued_messages(self) -> None:
        """Drop every message waiting in this test's queue, as a broker losing them would."""
        if self.broker_kind == "rabbitmq":
            with Connection(self.settings.redis.broker_url, connect_timeout=5) as connection:
                connection.default_channel.queue_purge(self.queue)
            return
        for key in self.queue_keys():
            self.broker_client.delete(key)

    def wait_killed_delivery_kept(self) -> None:
        """The delivery of a SIGKILLed worker is still the broker's, each broker in its own way.

        Redis parks it in the ``unacked`` hash (restored only after the visibility timeout);
        RabbitMQ requeues it as soon as the dead worker's connection closes, so with no other
        consumer it is back in the queue, ready.
        """
        if self.broker_kind == "rabbitmq":
            wait_for(lambda: self.queue_length() == 1, 30,
                     "RabbitMQ to requeue the killed worker's delivery", interval=0.2)
        else:
            assert self.unacked_for_queue(), "the killed delivery should be parked in the broker's unacked hash"

    def queue_keys(self) -> list[str]:
        # kombu keeps one list per priority step: "<queue>" and "<queue>\x06\x16<n>".
        return [self.queue, *self.broker_client.scan_iter(match=f"{self.queue}\x06\x16*")]

    def unacked_for_queue(self) -> dict[str, str]:
        """The broker's unacked entries (delivered, never acked) that belong to this queue."""
        found = {}
        for tag, raw in self.broker_client.hscan_iter("unacked"):
            with contextlib.suppress(ValueError, TypeError, IndexError):
                _payload, _exchange, routing_key = json.loads(raw)
                if routing_key == self.queue:
                    found[tag] = raw
        return found

    def worker_env(self) -> dict[str, str]:
        """The environment that makes ``workers.cli worker`` load exactly these settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTE_ACTIONS_")}
        s = self.settings
        options: dict[str, Any] = {
            "HOST": s.host,
            "REDIS__STORE_URL": s.redis.store_url,
            "REDIS__BROKER_URL": s.redis.broker_url,
            "REDIS__KEY_PREFIX": s.redis.key_prefix,
            "FLEET__FLEET_FILE": s.fleet.fleet_file,
            "FLEET__DURATION_SCALE": s.fleet.duration_scale,
        }
        for name, value in s.engine.model_dump().items():
            options[f"ENGINE__{name.upper()}"] = value
        env.update({f"COMPUTE_ACTIONS_{k}": str(v) for k, v in options.items()})
        # No config file: the environment above is the whole configuration.
        env["COMPUTE_ACTIONS_CONFIG"] = str(Path(os.devnull))
        env["COMPUTE_ACTIONS_LOG_LEVEL"] = "INFO"
        # The per-delivery line (DEBUG) is what ``WorkerProcess.outcomes`` reads; only that logger.
        env["COMPUTE_ACTIONS_LOGGING__LEVELS"] = json.dumps({DELIVERY_LOGGER: "DEBUG"})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def cleanup(self) -> None:
        for key in self.store_client.scan_iter(match=f"{self.prefix}*", count=1000):
            self.store_client.delete(key)
        if self.broker_kind == "rabbitmq":
            delete_rabbitmq_queue(self.settings.redis.broker_url, self.queue)
            return
        b = self.broker_client
        for key in b.scan_iter(match=f"*{self.token}*", count=1000):  # queue lists, bindings, pidboxes
            b.delete(key)
        for key in b.scan_iter(match="_kombu.binding.*", count=1000):
            if b.type(key) == "set":
                stale = [m for m in b.smembers(key) if self.token in m]
                if stale:
                    b.srem(key, *stale)
        for tag in self.unacked_for_queue():
            b.zrem("unacked_index", tag)
            b.hdel("unacked", tag)


def rabbitmq_ready_count(url: str, queue: str) -> int:
    with Connection(url, connect_timeout=5) as connection:
        try:
            _, ready, _ = connection.channel().queue_declare(queue=queue, passive=True)
        except connection.channel_errors:  # not declared (yet): nothing in it
            return 0
        return int(ready)


def delete_rabbitmq_queue(url: str, queue: str) -> None:
    """The test's queue, and its exchange (named after it), with whatever is in them."""
    with Connection(url, connect_timeout=5) as connection:
        for delete in (lambda ch: ch.queue_delete(queue), lambda ch: ch.exchange_delete(queue)):
            channel = connection.channel()
            with contextlib.suppress(*connection.channel_errors):
                delete(channel)
            with contextlib.suppress(*connection.channel_errors, *connection.connection_errors):
                channel.close()


def rabbitmq_or_fail(url: str = RABBITMQ_URL) -> None:
    """RabbitMQ answers at ``url``; in CI (CI=true) a missing RabbitMQ fails instead of skipping."""
    try:
        with Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - refused, reset, timed out, bad credentials: all "not there"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"RabbitMQ is required in CI and is not answering at {url}: {exc}")
        pytest.skip(f"no RabbitMQ at {url}: {exc}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine(**options): override the integration tests' [engine] settings")


@pytest.fixture(scope="session")
def real_redis() -> redis.Redis:
    return real_redis_or_fail()


@pytest.fixture
def broker_kind() -> str:
    """Redis, unless the test is parametrised over brokers (``BOTH_BROKERS``)."""
    return "redis"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, real_redis: redis.Redis, broker_kind: str) -> Iterator[Namespace]:
    if broker_kind == "rabbitmq":
        rabbitmq_or_fail()
    token = uuid.uuid4().hex[:12]
    engine = dict(DEFAULT_ENGINE)
    for marker in reversed(list(request.node.iter_markers("engine"))):
        engine.update(marker.kwargs)
    engine["queue"] = f"ca-it-{token}"
    settings = Settings(
        redis={
            "store_url": f"{REAL_REDIS_URL}/{STORE_DB}",
            "broker_url": RABBITMQ_URL if broker_kind == "rabbitmq" else f"{REAL_REDIS_URL}/{BROKER_DB}",
            "key_prefix": f"it-{token}:",
        },
        engine=engine,
        fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": DURATION_SCALE},
    )
    ns = Namespace(
        token=token, prefix=settings.redis.key_prefix, queue=settings.engine.queue, settings=settings,
        store_client=redis.Redis.from_url(settings.redis.store_url, decode_responses=True),
        broker_client=redis.Redis.from_url(f"{REAL_REDIS_URL}/{BROKER_DB}", decode_responses=True),
        broker_kind=broker_kind,
    )
    try:
        yield ns
    finally:
        ns.cleanup()
        ns.store_client.close()
        ns.broker_client.close()


@pytest.fixture
def runtime(namespace: Namespace) -> Iterator[Runtime]:
    """The API side in this process: real store, real CeleryEnqueuer on the real broker; seeds the fleet."""
    rt = build_runtime(namespace.settings)
    try:
        yield rt
    finally:
        rt.celery.close()
        rt.store.close()


# ---- worker processes ------------------------------------------------------------------------------
@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    killed: bool = field(default=False)
    terminated: bool = field(default=False)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session=True: the main process leads its own group

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            return f"{self.name}@" in self.log() and " ready." in self.log()

        wait_for(ready, timeout, interval=0.2, message=lambda: f"worker {self.name} ready; log:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: main process and pool child die at once, nothing is acked."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=WORKER_STOP_TIMEOUT)

    def terminate(self) -> None:
        """Ask for a warm shutdown (once; a second signal would turn it into a cold one)."""
        if self.alive() and not self.terminated:
            self.terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it has not exited within a bounded wait."""
        if self.alive():
            self.terminate()
            try:
                self.proc.wait(timeout=WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (a pool child stuck in a task) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=WORKER_STOP_TIMEOUT)

    def outcomes(self, request_id: str) -> list[tuple[int, str]]:
        """(wake, outcome) of every delivery of ``request_id`` this worker logged, in order
        (the DEBUG line of ``DELIVERY_LOGGER``, which ``worker_env`` turns on for that logger alone)."""
        marker = f"action {request_id} wake "
        found = []
        for line in self.log().splitlines():
            if marker in line:
                wake, _, outcome = line.split(marker, 1)[1].partition(": ")
                found.append((int(wake), outcome.strip()))
        return found


StartWorker = Callable[..., WorkerProcess]
_WORKERS = pytest.StashKey[list[WorkerProcess]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        for worker in item.stash.get(_WORKERS, []):
            state = "killed" if worker.killed else ("running" if worker.alive() else f"exit {worker.proc.returncode}")
            report.sections.append((f"worker {worker.name} ({state}) log: {worker.log_path}", worker.log()))
    return report


@pytest.fixture
def start_worker(request: pytest.FixtureRequest, namespace: Namespace,
                 tmp_path: Path) -> Iterator[StartWorker]:
    """``start_worker(name)`` spawns a prefork worker (-c 1) on this test's queue and waits until it is ready."""
    workers: list[WorkerProcess] = []
    request.node.stash[_WORKERS] = workers

    def start(name: str, *, wait: bool = True) -> WorkerProcess:
        node = f"{name}-{namespace.token}"
        log_path = tmp_path / f"worker-{name}.log"
        cmd = [sys.executable, "-m", "workers.cli", "worker", "-c", "1", "-n", f"{node}@%h",
               "--without-gossip", "--without-mingle"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=namespace.worker_env(), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(node, proc, log_path)
        workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in workers:  # all at once, then wait for each
            worker.terminate()
        for worker in workers:
            worker.stop()
