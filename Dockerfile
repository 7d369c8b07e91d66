# syntax=docker/dockerfile:1
# Build: a virtualenv with the pinned dependencies (requirements.lock), then the gateway.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-deps ./ && pip check

# Run: slim, no build tools, a non-root user, only the venv and the config.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    GATEWAY_CONFIG=/etc/gateway/gateway.yaml \
    PROMETHEUS_MULTIPROC_DIR=/tmp/gateway-metrics \
    WEB_CONCURRENCY=2 \
    GATEWAY_GRACE_SECONDS=30 \
    PORT=8080
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
COPY config/quickstart.yaml /etc/gateway/gateway.yaml
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health\", timeout=2)"]
# gunicorn runs WEB_CONCURRENCY uvicorn workers (gateway/gunicorn_conf.py); SIGTERM drains.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "python:gateway.gunicorn_conf"]
