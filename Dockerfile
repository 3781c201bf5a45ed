# The controller image: `docker build -t cloudjob-controller:dev .`, or without a
# Docker engine `scripts/build-image` (buildah, with the base made from Debian's
# packages). Debian bookworm with Debian's Python 3.11, the version the project
# requires, in a stage the others start from, so the virtualenv's python (a link to
# /usr/bin/python3) is the same package where it is built and where it runs. The build
# stage compiles pymesos's http-parser dependency with the same script scripts/setup
# uses (it says why) and installs the dependencies into /opt/venv; the console stage
# builds the web console; the project stage builds the project's wheel with it; the runtime stage adds the virtualenv, installs the wheel
# into it and runs as an unprivileged user. The Helm chart (charts/cloudjob-controller)
# runs it with `run`, settings from CLOUDJOB_* variables; docs/deploy.md explains the
# deployment.

FROM debian:bookworm-slim AS debian-python
# ca-certificates: TLS to endpoints with public CAs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM debian-python AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
COPY scripts/build-http-parser /src/scripts/build-http-parser
RUN /src/scripts/build-http-parser /opt/venv/bin/python \
    && /opt/venv/bin/python -m pip uninstall --quiet -y cython
COPY pyproject.toml README.md /src/
RUN /opt/venv/bin/python -c 'import sys, tomllib; \
        print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"], sep="\n")' \
        /src/pyproject.toml >/tmp/requirements.txt \
    && /opt/venv/bin/python -m pip install --quiet -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The web console (console/), built from its lockfile with Debian's Node.js into the
# folder the controller serves it from; the wheel below carries it.
FROM debian-python AS console
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
# /root may be mounted read-only (scripts/build-image): npm's cache and logs go here.
ENV npm_config_cache=/tmp/npm-cache
COPY console/package.json console/package-lock.json /src/console/
RUN cd /src/console && npm ci --no-audit --no-fund --loglevel=error
COPY console /src/console
RUN cd /src/console && npm run build

# The project itself as a wheel, in a stage of its own: a change to controller/ rebuilds
# only this and the wheel's install below, never the virtualenv's dependencies.
FROM build AS project
COPY controller /src/controller
COPY --from=console /src/controller/api/static /src/controller/api/static
RUN /opt/venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation \
        --wheel-dir /wheels /src

FROM debian-python
# A named account for the default uid. The Mesos framework user defaults to the user
# name (getpass): USER gives one under any uid a cluster's policy may impose.
RUN groupadd --gid 10001 cloudjob \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cloudjob
COPY --from=build /opt/venv /opt/venv
COPY --from=project /wheels /tmp/wheels
RUN /opt/venv/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir \
        --no-deps --no-index /tmp/wheels/*.whl \
    && rm -r /tmp/wheels
ENV PATH=/opt/venv/bin:$PATH \
    USER=cloudjob \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# /healthz and /readyz, then Prometheus /metrics (CLOUDJOB_HTTP__*_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "controller"]
CMD ["run"]
