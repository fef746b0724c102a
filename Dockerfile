# inquest's image. These machines have no Docker engine, so this file is not built here.
# The multi-stage image (non-root, `kopf run`) arrives with the Helm chart issue.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home inquest
USER 10001
# The operator entry point (`kopf run`) is added with the engine and Helm issues.
CMD ["python", "-c", "import inquest; print(inquest.__version__)"]
