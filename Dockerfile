# One image for every Phalanx process. The command picks the service:
#   phalanx-sim | phalanx-auth | phalanx-ingest | phalanx-ledger | phalanx-executor | phalanx-seed
# Build:  docker build -t phalanx:dev .
# Every third-party package is pinned by constraints.txt (no lock file with download addresses).

# ---------------------------------------------------------------------------------------------
# Stage 1: build a virtual environment in /opt/venv.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependency layer: only the pins and the members' pyproject.toml files, so source edits do not
# reinstall third-party packages.
COPY constraints.txt ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/tradovate/pyproject.toml libs/tradovate/
COPY libs/testing/pyproject.toml libs/testing/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/auth/pyproject.toml services/auth/
COPY services/executor/pyproject.toml services/executor/
COPY services/ledger/pyproject.toml services/ledger/
COPY sim/pyproject.toml sim/
COPY bench/pyproject.toml bench/

# Collect the third-party dependencies of every member (phalanx-* are the members themselves)
# and install them with the exact pins.
RUN python -c "import glob, tomllib; deps = {d for p in glob.glob('**/pyproject.toml', recursive=True) for d in tomllib.load(open(p, 'rb'))['project'].get('dependencies', [])}; open('/tmp/deps.txt', 'w').write(''.join(d + '\n' for d in sorted(deps) if not d.startswith('phalanx-')))" \
 && cat /tmp/deps.txt \
 && pip install -c constraints.txt -r /tmp/deps.txt

# Source layer: the members, installed non-editable (their dependencies are already present).
COPY libs ./libs
COPY services ./services
COPY sim ./sim
COPY bench ./bench
RUN pip install --no-deps -c constraints.txt \
        ./libs/common ./libs/tradovate ./libs/testing \
        ./services/ingest ./services/auth ./services/executor ./services/ledger \
        ./sim ./bench \
 && pip check

# ---------------------------------------------------------------------------------------------
# Stage 2: the runtime image: the venv, a non-root user, no build context.
FROM python:3.11-slim AS runtime

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
