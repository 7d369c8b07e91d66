# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install '.[server]'

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    GATEWAY_CONFIG=/etc/gateway/gateway.yaml \
    WEB_CONCURRENCY=2 \
    PORT=8080
RUN useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /install /usr/local
COPY config/quickstart.yaml /etc/gateway/gateway.yaml
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT','8080'), timeout=2)"]
# gunicorn manages uvicorn workers; WEB_CONCURRENCY sets how many.
CMD ["sh", "-c", "exec gunicorn 'gateway.serve:app_from_env()' -k uvicorn.workers.UvicornWorker --workers ${WEB_CONCURRENCY} --bind 0.0.0.0:${PORT} --graceful-timeout 30 --access-logfile -  --error-logfile -"]
