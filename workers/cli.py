"""``compute-actions``: dev (everything in one process), api, worker, flower; watch, actions, fleet."""
from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence

from compute.settings import Settings, get_settings
from workers.auto_confirm import AutoConfirmThread
from workers.heartbeat import attach_to_worker, beating
from workers.logs import configure_logging
from workers.reaper import ReaperThread
from workers.runtime import Runtime, build_runtime

LOG = logging.getLogger("compute_actions")


def clouds_yaml(endpoint: str, token: str = "admin:admin") -> str:
    base = endpoint.rsplit("/v2.1", 1)[0]
    return (
        "clouds:\n"
        "  compute-actions:\n"
        "    auth_type: admin_token\n"
        "    auth:\n"
        f"      endpoint: {endpoint}\n"
        f"      token: {token}\n"
        f"    block_storage_endpoint_override: {base}/volume/v3\n"
        "    identity_api_version: '3'\n"
        f"    identity_endpoint_override: {base}/identity/v3\n"
        f"    image_endpoint_override: {base}/image\n"
    )


def dev_banner(endpoint: str) -> str:
    base = endpoint.rsplit("/v2.1", 1)[0]
    return f"""compute-actions dev: API + worker + embedded store and broker + sample fleet, in one process.
NOT DURABLE: everything lives in this process's memory and is gone when it stops.

  endpoint     {endpoint}
  admin token  admin:admin        (X-Auth-Token: <user>:<project>; user "admin" is an admin)
  demo token   demo:demo          (a member of project "demo")

For curl, compute-actions, openstack and nova (README.md, "Trying it"):
  export OS_COMPUTE_API={endpoint}
  export OS_AUTH_TYPE=token OS_AUTH_URL={base}/identity/v3 OS_TOKEN=admin:admin OS_PROJECT_NAME=admin

clouds.yaml entry (put it in ./clouds.yaml or ~/.config/openstack/clouds.yaml), then
  openstack --os-cloud compute-actions server list

{clouds_yaml(endpoint)}"""


def keep_our_logging() -> None:
    """Celery configures logging (root level and handlers) only when nobody answers ``setup_logging``."""
    from celery.signals import setup_logging

    setup_logging.connect(_logging_is_set_up, weak=False)


def _logging_is_set_up(**_: object) -> None:
    """workers/logs.py configured it in ``main``."""


@contextlib.contextmanager
def embedded_worker(runtime: Runtime, concurrency: int = 4) -> Iterator[None]:
    """A Celery worker on threads inside this process, consuming the in-memory broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(runtime.celery, pool="threads", concurrency=concurrency,
                      perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10.0):
        yield


# How often the embedded worker looks at kombu's in-memory queues (kombu's default is 1.0 s, which
# every delivery waited for: an action took ~1 s in dev). An empty look costs microseconds.
# 5 ms: dev actions then take what production's take (bench/dev_vs_production.py), for <1% of a core idle.
DEV_POLLING_INTERVAL = 0.005


def build_dev_runtime(settings: Settings) -> Runtime:
    import fakeredis

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    runtime = build_runtime(settings, redis_client=client, broker_url="memory://localhost/")
    options = dict(runtime.celery.conf.broker_transport_options or {})
    runtime.celery.conf.broker_transport_options = {**options, "polling_interval": DEV_POLLING_INTERVAL}
    return runtime


def run_dev(host: str, port: int, settings: Settings, clouds_yaml_path: str | None = None) -> None:
    from werkzeug.serving import make_server

    from api.app import create_app
    from workers import metrics

    metrics.install()  # one process: its /metrics shows the API's and the worker's counters
    keep_our_logging()
    runtime = build_dev_runtime(settings)
    app = create_app(settings, runtime.service)
    server = make_server(host, port, app, threaded=True)
    endpoint = f"http://{host}:{server.server_port}/v2.1"
    reaper = ReaperThread(runtime.reaper, settings.engine.reaper_interval_seconds)
    auto_confirm = AutoConfirmThread(runtime.service)
    if clouds_yaml_path:
        with open(clouds_yaml_path, "w", encoding="utf-8") as f:
            f.write(clouds_yaml(endpoint))
    with embedded_worker(runtime), beating(runtime):
        reaper.start()
        auto_confirm.start()
        print(dev_banner(endpoint), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            reaper.stop()
            auto_confirm.stop()
            server.server_close()


def run_api(bind: str, workers: int, settings: Settings) -> None:
    """The API under gunicorn, which slow clients cannot block.

    gthread workers: a connection that has sent nothing waits in the worker's poller, not in a
    thread, and ``[api] threads`` requests run at once per worker. Every connection inherits
    from its listener a ``[api] client_timeout`` on each read and write (SO_RCVTIMEO and
    SO_SNDTIMEO), so a client that stalls in its headers or body, or stops reading the answer,
    holds a thread that long at most. With ``[metrics] bind``, /metrics is served on that
    listener only, and nothing else is.

    Metrics are in prometheus_client's multiprocess mode (workers/metrics.py): every gunicorn
    worker writes to ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder unless set), a
    scrape of any of them adds all up, and ``child_exit`` marks a dead worker's files. The
    access log is the app's own line per request (logger ``api.access``, with the request id),
    so gunicorn's is off.

    gunicorn 25.1+ opens a control socket for ``gunicornc``, by default one per user
    (``$HOME/.gunicorn/gunicorn.ctl``), so a second instance on the machine would take the
    first's. Each instance gets its own in a fresh temporary folder, logged at start and
    removed at exit.
    """
    import json
    import shutil
    import socket
    import struct
    import tempfile

    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger as GunicornLogger

    from workers import metrics

    class RootLogger(GunicornLogger):  # type: ignore[misc]
        """gunicorn's own lines through the root handler, so ``[logging] format`` applies to them too."""

        def setup(self, cfg: object) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in list(log.handlers):
                    log.removeHandler(handler)
                log.propagate = True

    multiproc_dir, made_here = metrics.configure_multiprocess("api")

    metrics_bind = settings.metrics.bind
    metrics_port = metrics_bind.rsplit(":", 1)[-1] if metrics_bind else None
    if metrics_port is not None and metrics_port == bind.rsplit(":", 1)[-1]:
        raise SystemExit(f"[metrics] bind {metrics_bind} must use another port than the API's {bind}")
    control_dir = tempfile.mkdtemp(prefix="compute-actions-api-")
    control_socket = f"{control_dir}/gunicorn.ctl"

    def on_exit(_server: object) -> None:
        shutil.rmtree(control_dir, ignore_errors=True)
        if made_here:
            metrics.remove_multiprocess_dir(multiproc_dir)

    not_found = json.dumps({"itemNotFound": {"code": 404, "message": "The resource could not be found."}}).encode()

    def limit_silent_clients(server: object) -> None:
        seconds = settings.api.client_timeout
        timeval = struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))
        for listener in getattr(server, "LISTENERS", []):
            sock = getattr(listener, "sock", listener)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def metrics_apart(app):  # a WSGI app in, a WSGI app out
        def application(environ, start_response):
            on_metrics_port = environ.get("SERVER_PORT") == metrics_port
            if on_metrics_port != (environ.get("PATH_INFO", "").rstrip("/") == "/metrics"):
                start_response("404 Not Found", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(not_found)))])
                return [not_found]
            return app(environ, start_response)

        return application

    class ApiServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", [bind, metrics_bind] if metrics_bind else [bind])
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.api.threads)
            self.cfg.set("keepalive", 2)
            # The arbiter's heartbeat: gthread's main loop beats while requests run in threads, so a
            # long request (os-migrateLive pre-checks below 2.34) does not trip it.
            self.cfg.set("timeout", int(settings.api.rpc_response_timeout) + 30)
            self.cfg.set("when_ready", limit_silent_clients)
            self.cfg.set("accesslog", None)
            self.cfg.set("logger_class", RootLogger)
            self.cfg.set("child_exit", lambda _server, worker: metrics.mark_process_dead(worker.pid))
            self.cfg.set("on_exit", on_exit)
            if "control_socket" in self.cfg.settings:
                self.cfg.set("control_socket", control_socket)
                LOG.info("gunicorn control socket: %s (gunicornc -s %s)", control_socket, control_socket)

        def load(self):
            from workers.wsgi import build_application

            metrics.install()
            app = build_application(settings)
            return metrics_apart(app) if metrics_port is not None else app

    ApiServer().run()


def run_worker(settings: Settings, celery_args: Sequence[str]) -> None:
    """A Celery worker with the reaper and auto-confirm threads.

    With ``[metrics] worker_bind`` its processes (prefork children and the main one, where the
    reaper runs) count in a multiprocess folder of their own and the main process serves the
    sum there. Logging stays as ``main`` set it (Celery's ``setup_logging`` is answered).
    """
    from celery.signals import worker_ready, worker_shutting_down

    from workers import metrics

    exporter_bind = settings.metrics.worker_bind
    multiproc_dir, made_here = metrics.configure_multiprocess("worker") if exporter_bind else (None, False)
    if made_here and multiproc_dir:  # at exit, once the pool's children are gone (they write there)
        atexit.register(metrics.remove_multiprocess_dir, multiproc_dir)
    metrics.install()
    keep_our_logging()
    runtime = build_runtime(settings)
    reaper = ReaperThread(runtime.reaper, settings.engine.reaper_interval_seconds)
    auto_confirm = AutoConfirmThread(runtime.service)
    attach_to_worker(runtime)

    @worker_ready.connect(weak=False)
    def start_reaper(**_: object) -> None:
        reaper.start()
        auto_confirm.start()
        if exporter_bind:
            metrics.start_worker_exporter(exporter_bind)

    @worker_shutting_down.connect(weak=False)
    def stop_reaper(**_: object) -> None:
        reaper.stop()
        auto_confirm.stop()

    runtime.celery.worker_main(celery_worker_argv(settings, celery_args))


def celery_worker_argv(settings: Settings, celery_args: Sequence[str]) -> list[str]:
    """``celery worker``'s arguments: ours, then the operator's (a later ``--pool`` or ``-c`` wins)."""
    return ["worker", "-E", "-Q", settings.engine.queue, "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            "--pool", settings.worker.pool, *celery_args]


def run_flower(settings: Settings, flower_args: Sequence[str]) -> int:
    cmd = [sys.executable, "-m", "celery", "-b", settings.redis.broker_url, "flower", *flower_args]
    return subprocess.call(cmd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compute-actions", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="API + worker + embedded broker/store + sample fleet, one process")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8774)
    dev.add_argument("--clouds-yaml", metavar="PATH", help="also write the clouds.yaml entry to PATH")
    api = sub.add_parser("api", help="the API under gunicorn (needs Redis)")
    api.add_argument("--bind", default="127.0.0.1:8774")
    api.add_argument("--workers", type=int, default=2)
    sub.add_parser("worker", help="a Celery worker; extra arguments go to 'celery worker'")
    sub.add_parser("flower", help="Flower on the broker; extra arguments go to 'celery flower'")
    health = sub.add_parser("health", help="exit 0 if healthy, else 1: the API's /readyz, or --worker NAME's heartbeat")
    health.add_argument("--worker", metavar="NAME", help="a worker's -n name (%%h expanded); default: check the API")
    health.add_argument("--url", default=None, help="the API's readiness URL (default http://127.0.0.1:8774/readyz)")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    from workers.operator_cli import (  # watch, actions, fleet (HTTP)
        add_operator_commands,
        run_operator_command,
    )

    add_operator_commands(sub)
    args, rest = parser.parse_known_args(argv)
    operator_exit = run_operator_command(args, rest)
    if operator_exit is not None:
        return operator_exit
    settings = get_settings()
    configure_logging(settings)
    if args.command == "dev":
        run_dev(args.host, args.port, settings, args.clouds_yaml)
    elif args.command == "api":
        run_api(args.bind, args.workers, settings)
    elif args.command == "worker":
        run_worker(settings, rest)
    elif args.command == "flower":
        return run_flower(settings, rest)
    elif args.command == "health":
        from workers.health import run_health

        return run_health(settings, args.worker, args.url, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
