# One image for the api, worker and flower services (docker-compose.yml); the entry point is the CLI.
FROM python:3.11-slim

# The processes run as an unprivileged user (Celery warns against root). Nothing under /app is
# written at runtime; what is written goes to the user's home and /tmp: the gunicorn control
# socket (one folder per API instance), the Prometheus multiprocess folders, Flower's files.
RUN groupadd --system --gid 10001 compute-actions \
    && useradd --system --uid 10001 --gid compute-actions --home-dir /home/compute-actions \
       --create-home --shell /usr/sbin/nologin compute-actions

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY compute compute
COPY fleet fleet
COPY tasks tasks
COPY workers workers
COPY config config
# The keystone extra: keystonemiddleware, for [api] auth_strategy = "keystone" (docker-compose.yml).
RUN pip install --no-cache-dir ".[keystone]"

# The installed package looks for config/ beside itself (site-packages), so name the copies here.
ENV COMPUTE_ACTIONS_CONFIG=/app/config/compute-actions.toml \
    COMPUTE_ACTIONS_FLEET__FLEET_FILE=/app/config/fleet.yaml \
    COMPUTE_ACTIONS_REDIS__STORE_URL=redis://redis:6379/1 \
    COMPUTE_ACTIONS_REDIS__BROKER_URL=redis://redis:6379/0 \
    HOME=/home/compute-actions

USER 10001:10001

# The API's readiness (store, broker, a live worker); docker-compose.yml gives the worker and
# flower services checks of their own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["compute-actions", "health", "--url", "http://127.0.0.1:8774/readyz"]

ENTRYPOINT ["compute-actions"]
