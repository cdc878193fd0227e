# syntax=docker/dockerfile:1
# One image for every plane: the container command picks the module, e.g.
#   args: ["services.order"]  or  args: ["services.strategies", "ma_cross", "--role", "entry"]
# Build:  docker build -t quantmesh:dev .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolve and install the runtime dependencies into a venv ----------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Left out of the image on purpose:
# - pgserver: an embedded PostgreSQL for laptops; in the cluster DATABASE_URL always points at
#   the PostgreSQL StatefulSet, and services/common/embedded_pg.py imports it only when unset.
# - grpcio-tools: code generation only (gen/ is committed).
# The dev extras (pytest, kubernetes-validate, ...) are never installed.
ARG LEAVE_OUT="pgserver grpcio-tools"
WORKDIR /build
# Only pyproject.toml first, so editing code does not rebuild the dependency layer.
COPY pyproject.toml ./
RUN python - <<'PY' > requirements.txt
import os, re, tomllib
leave_out = set(os.environ.get("LEAVE_OUT", "").split())
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()
    if name not in leave_out:
        print(requirement)
PY
# Every dependency ships manylinux wheels (TA-Lib >= 0.6 bundles the C library), so no compiler.
RUN pip wheel --wheel-dir /wheels -r requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels -r requirements.txt
# pip itself is not needed at run time.
RUN /opt/venv/bin/python -m pip uninstall -y pip
# The root filesystem is read-only at run time, so compile the bytecode now.
RUN python -m compileall -q /opt/venv/lib

# ---- runtime: the venv, the planes (services/) and the generated contracts (gen/) -----------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 quantmesh \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp/home \
      --shell /usr/sbin/nologin quantmesh
COPY --from=builder /opt/venv /opt/venv
COPY services /app/services
COPY gen /app/gen
RUN python -m compileall -q /app
# HOME, TMPDIR and the data dir live under /tmp, an emptyDir in the cluster (read-only root).
# gen/quantmesh is a namespace package without __init__.py, so gen/ goes on the path as is.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp/home \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    QUANTMESH_DATA_DIR=/tmp/quantmesh
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["services.cli", "--help"]
