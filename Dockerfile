# One image for every povguard service; the command chooses the service:
#   docker run povguard povguard-serve intake        (ports: intake 8101 ... audit 8105; PORT overrides)
#   docker run povguard povguard-migrate             (the one-shot schema migration and stream declaration)
# It holds contracts, platform, rules and the services, installed by uv from uv.lock; not the tools (`povguard`).
#
# BASE_IMAGE: any Debian-like image with Python 3.11+ (python3, venv). Where public images cannot be pulled, build
# one locally (deploy/real-run.sh: debootstrap + docker import). Wheels put in deploy/wheels/ beforehand
# (deploy/real-run.sh downloads them on the host) make the build offline; without them uv installs from PyPI.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY deploy/wheels/ /wheels/
RUN if ls /wheels/*.whl >/dev/null 2>&1; then echo "--no-index --find-links /wheels" > /tmp/index; \
    else : > /tmp/index; fi \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet $(cat /tmp/index) uv
# the workspace as uv.lock knows it (tools' pyproject only, so that the lock resolves; tools is not installed)
COPY pyproject.toml uv.lock ./
COPY tools/pyproject.toml tools/pyproject.toml
COPY libs/ libs/
COPY services/ services/
RUN packages="$(for d in libs/contracts libs/platform libs/rules services/*/; do \
        sed -n 's/^name = "\(.*\)"/--package \1/p' "$d/pyproject.toml" | head -1; done)" \
 && /opt/uv/bin/uv export --frozen --no-dev --no-emit-workspace $packages -o /tmp/requirements.txt \
 && /opt/uv/bin/uv venv --python "$(command -v python3)" /opt/povguard \
 && /opt/uv/bin/uv pip install --python /opt/povguard/bin/python $(cat /tmp/index) -r /tmp/requirements.txt \
 && /opt/uv/bin/uv pip install --python /opt/povguard/bin/python $(cat /tmp/index) --no-deps \
        libs/contracts libs/platform libs/rules services/*/ \
 && find /opt/povguard -name tests -type d -path '*site-packages/*' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN (getent group povguard || groupadd --system --gid 10001 povguard) \
 && (getent passwd povguard || useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin povguard)
COPY --from=build /opt/povguard /opt/povguard
COPY policies/ /app/policies/
WORKDIR /app
ENV PATH=/opt/povguard/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 ENVIRONMENT=production
# non-root; run it with a read-only root filesystem (compose: read_only, Kubernetes: readOnlyRootFilesystem) and a
# tmpfs on /tmp for exports
USER 10001:10001
EXPOSE 8101 8102 8103 8104 8105
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 CMD ["povguard-healthcheck"]
CMD ["povguard-serve", "intake"]
