# serversinc/api: the control plane (gRPC API + deploy workers), and the one-shot init that makes
# certificates and the agent secret (serversinc-entrypoint init). Non-root (uid 10001).
# Build context: the repository layout made by scripts/images.py (docker/, build/wheels/,
# scripts/certs.py); BASE_IMAGE defaults to the public Python image, see docker/README.md.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- stage 1: a virtualenv filled from the wheels in the build context (no network) -------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/wheels/core/ /wheels/
RUN python3 -m venv /opt/serversinc \
 && /opt/serversinc/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY build/wheels/project-api/ /wheels/project/
RUN /opt/serversinc/bin/pip install -q --no-index --no-deps /wheels/project/*.whl

# ---- stage 2: the runtime image --------------------------------------------------------------
FROM ${BASE_IMAGE}
# git: the control plane resolves branch heads with `git ls-remote`. The local base has it; on the
# public base it comes from Debian (the only build step that may use the network, and only there).
RUN command -v git >/dev/null || (apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*)
RUN echo "serversinc:x:10001:10001:Serversinc:/home/serversinc:/usr/sbin/nologin" >> /etc/passwd \
 && echo "serversinc:x:10001:" >> /etc/group \
 && mkdir -p /home/serversinc /data/certs /data/agent \
 && chown -R 10001:10001 /home/serversinc /data
COPY --from=build /opt/serversinc /opt/serversinc
COPY docker/healthcheck.py /usr/local/bin/serversinc-healthcheck
RUN sed -i "1s|.*|#!/opt/serversinc/bin/python|" /usr/local/bin/serversinc-healthcheck \
 && chmod 755 /usr/local/bin/serversinc-healthcheck
# git refuses repositories owned by another user ("dubious ownership"); the control plane only
# reads them (ls-remote), and a local-path repository on a volume is often owned by root.
RUN printf '[safe]\n\tdirectory = *\n' >> /etc/gitconfig
COPY scripts/certs.py /opt/serversinc/scripts/certs.py
COPY docker/entrypoint.py /usr/local/bin/serversinc-entrypoint
RUN sed -i "1s|.*|#!/opt/serversinc/bin/python|" /usr/local/bin/serversinc-entrypoint \
 && chmod 755 /usr/local/bin/serversinc-entrypoint
ENV PATH=/opt/serversinc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/serversinc SERVERSINC_HOME=/data TUGBOAT_HOME=/data/agent PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /data
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
  CMD ["serversinc-healthcheck", "grpc", "127.0.0.1:50051", "--ca", "/data/certs/ca.pem"]
ENTRYPOINT ["serversinc-entrypoint", "api"]
CMD ["--listen", "127.0.0.1:50051"]
