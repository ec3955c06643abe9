# serversinc/agent: the Tugboat agent, with git (its repository cache) and HAProxy. The same image
# runs the front door service (`tugboat-frontdoor`, port 8000; compose's `frontdoor`), which the
# agent adopts; alone, the agent starts one itself. Runs as root: it needs the Docker socket, which
# is root-equivalent on the host anyway (see docker/README.md). Run it with the host network.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- stage 1: a virtualenv filled from the wheels in the build context (no network) -------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/wheels/core/ /wheels/
RUN python3 -m venv /opt/serversinc \
 && /opt/serversinc/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY build/wheels/project-agent/ /wheels/project/
RUN /opt/serversinc/bin/pip install -q --no-index --no-deps /wheels/project/*.whl

# ---- stage 2: the runtime image --------------------------------------------------------------
FROM ${BASE_IMAGE}
# git and haproxy: in the local base; on the public base they come from Debian.
RUN (command -v git && command -v haproxy) >/dev/null || (apt-get update \
    && apt-get install -y --no-install-recommends git haproxy ca-certificates && rm -rf /var/lib/apt/lists/*)
RUN echo "serversinc:x:10001:10001:Serversinc:/home/serversinc:/usr/sbin/nologin" >> /etc/passwd \
 && echo "serversinc:x:10001:" >> /etc/group \
 && mkdir -p /home/serversinc /data/certs /data/agent \
 && chown -R 10001:10001 /home/serversinc /data
COPY --from=build /opt/serversinc /opt/serversinc
COPY docker/healthcheck.py /usr/local/bin/serversinc-healthcheck
RUN sed -i "1s|.*|#!/opt/serversinc/bin/python|" /usr/local/bin/serversinc-healthcheck \
 && chmod 755 /usr/local/bin/serversinc-healthcheck
# The repository cache fetches from paths and URLs the control plane names; inside this container
# every repository is the agent's own, so git's ownership check would only get in the way.
RUN printf '[safe]\n\tdirectory = *\n' >> /etc/gitconfig
ENV PATH=/opt/serversinc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SERVERSINC_HOME=/data TUGBOAT_HOME=/data/agent PYTHONUNBUFFERED=1
WORKDIR /data/agent
EXPOSE 50052 8000
# Mutual TLS as the control plane when /data/certs has its certificate; plaintext with --insecure.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
  CMD ["serversinc-healthcheck", "grpc", "127.0.0.1:50052", "--certs", "/data/certs"]
ENTRYPOINT ["tugboat"]
CMD ["--host", "127.0.0.1", "--port", "50052"]
