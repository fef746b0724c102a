# inquest's operator image, run by the Helm chart (helm/inquest) as user 10001 with a read-only root filesystem.
# These machines have no Docker engine, so this file is not built or tested here; the chart's lab test runs the
# same `python -m inquest run` outside a container, with the chart's ServiceAccount and RBAC.
#
#   docker build -t REGISTRY/inquest:0.1.0 . && docker push REGISTRY/inquest:0.1.0
#   helm install inquest helm/inquest -n inquest --create-namespace --set image.repository=REGISTRY/inquest

# Build stage: the package and its dependencies into a virtualenv; pip and the build tools stay behind.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install .

# Runtime stage: the same Python, the virtualenv, and an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
RUN groupadd --gid 10001 inquest \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin inquest
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENTRYPOINT ["python", "-m", "inquest", "run"]
