# serversinc/webhook: the GitHub webhook bridge (HTTP in, control-plane gRPC out). Non-root.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- stage 1: a virtualenv filled from the wheels in the build context (no network) -------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/wheels/core/ /wheels/
RUN python3 -m venv /opt/serversinc \
 && /opt/serversinc/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY build/wheels/project-webhook/ /wheels/project/
RUN /opt/serversinc/bin/pip install -q --no-index --no-deps /wheels/project/*.whl

# ---- stage 2: the runtime image --------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN echo "serversinc:x:10001:10001:Serversinc:/home/serversinc:/usr/sbin/nologin" >> /etc/passwd \
 && echo "serversinc:x:10001:" >> /etc/group \
 && mkdir -p /home/serversinc /data/certs /data/agent \
 && chown -R 10001:10001 /home/serversinc /data
COPY --from=build /opt/serversinc /opt/serversinc
COPY docker/healthcheck.py /usr/local/bin/serversinc-healthcheck
RUN sed -i "1s|.*|#!/opt/serversinc/bin/python|" /usr/local/bin/serversinc-healthcheck \
 && chmod 755 /usr/local/bin/serversinc-healthcheck
ENV PATH=/opt/serversinc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/serversinc SERVERSINC_HOME=/data PYTHONUNBUFFERED=1 \
    SERVERSINC_WEBHOOK_LISTEN=127.0.0.1:8088
USER 10001:10001
WORKDIR /home/serversinc
EXPOSE 8088
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
  CMD ["serversinc-healthcheck", "http", "http://127.0.0.1:8088/healthz"]
ENTRYPOINT ["serversinc-webhook"]
CMD []
