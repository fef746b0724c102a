# inquest's image. These machines have no Docker engine, so it is not built here; the Helm chart issue makes it
# multi-stage and adds `kopf run` with a liveness probe.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home inquest
USER 10001
ENTRYPOINT ["python", "-m", "inquest", "run"]
