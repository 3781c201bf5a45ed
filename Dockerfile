# The controller image: `docker build -t cloudjob-controller:dev .`, or without a
# Docker engine `scripts/build-image` (buildah, with the base made from Debian's
# packages). Both stages are Debian bookworm with Debian's Python 3.11, the version
# the project requires. The build stage compiles pymesos's http-parser dependency with
# the same script scripts/setup uses (it says why), then installs the project into
# /opt/venv; the runtime stage carries only that virtualenv and the Python it links to,
# and runs as an unprivileged user. The Helm chart (charts/cloudjob-controller) runs
# it with `run`, settings from CLOUDJOB_* variables; docs/deploy.md explains the
# deployment.

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
COPY scripts/build-http-parser /src/scripts/build-http-parser
RUN /src/scripts/build-http-parser /opt/venv/bin/python
COPY pyproject.toml README.md /src/
# The dependencies in a layer of their own, so that a change to controller/ only
# reinstalls the project.
RUN /opt/venv/bin/python -c 'import sys, tomllib; \
        print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"], sep="\n")' \
        /src/pyproject.toml >/tmp/requirements.txt \
    && /opt/venv/bin/python -m pip install --quiet -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY controller /src/controller
RUN /opt/venv/bin/python -m pip install --quiet --no-deps /src \
    && /opt/venv/bin/python -m pip uninstall --quiet -y cython

FROM debian:bookworm-slim
# The virtualenv's python is a link to this stage's /usr/bin/python3: the same Debian
# package as in the build stage. ca-certificates: TLS to endpoints with public CAs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A named account for the default uid. The Mesos framework user defaults to the user
# name (getpass): USER gives one under any uid a cluster's policy may impose.
RUN groupadd --gid 10001 cloudjob \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cloudjob
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    USER=cloudjob \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# /healthz and /readyz, then Prometheus /metrics (CLOUDJOB_HTTP__*_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "controller"]
CMD ["run"]
