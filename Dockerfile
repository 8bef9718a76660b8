FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY compute compute
COPY fleet fleet
COPY tasks tasks
COPY workers workers
COPY config config
RUN pip install --no-cache-dir ".[keystone]"
ENV COMPUTE_ACTIONS_REDIS__STORE_URL=redis://redis:6379/1 \
    COMPUTE_ACTIONS_REDIS__BROKER_URL=redis://redis:6379/0
ENTRYPOINT ["compute-actions"]
