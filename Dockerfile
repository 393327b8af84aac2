# The k8sco image: Python 3.11, k8sco and its dependencies. The controller Deployment runs it
# as `k8sco controller`; it is also the image of nodes that name none (their Jobs override
# the command with `k8sco call ...` or `/bin/sh -c ...`).
#
#   docker build -t ghcr.io/k8sco/k8sco:0.1.0 .
#   docker build --build-arg BASE=$(scripts/base-image.sh | tail -n 1) ...   # no registry
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The user the controller and every node run as: uid/gid 1000 is
# k8sco.render.constants.RUN_AS_USER, so a Job's runAsUser finds a home directory here.
RUN groupadd --gid 1000 k8sco \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin k8sco

COPY pyproject.toml README.md /src/
COPY k8sco /src/k8sco
RUN pip install /src && rm -rf /src

# The code root: Jobs run with workingDir /app, where images built for pipelines copy code.
WORKDIR /app
USER 1000:1000
CMD ["k8sco", "controller"]
