# The controller image: `docker build -t cloudjob-controller:dev .`
# The build stage compiles pymesos's http-parser dependency with the same script
# scripts/setup uses (it says why), then installs the project into /opt/venv; the
# runtime stage carries only that virtualenv and runs as an unprivileged user.
# The Helm chart (charts/cloudjob-controller) runs it with `run`, settings from
# CLOUDJOB_* variables; docs/deploy.md explains the deployment.

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY scripts/build-http-parser /src/scripts/build-http-parser
RUN /src/scripts/build-http-parser /opt/venv/bin/python
COPY pyproject.toml README.md /src/
COPY controller /src/controller
RUN /opt/venv/bin/python -m pip install --quiet /src \
    && /opt/venv/bin/python -m pip uninstall --quiet -y cython

FROM python:3.11-slim
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
