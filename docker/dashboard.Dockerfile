# serversinc/dashboard: `streamlit run dashboard/app.py` (the installed package's copy). Non-root.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- stage 1: a virtualenv filled from the wheels in the build context (no network) -------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY build/wheels/dashboard/ /wheels/
RUN python3 -m venv /opt/serversinc \
 && /opt/serversinc/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY build/wheels/project-dashboard/ /wheels/project/
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
# A stable path to the installed dashboard/app.py, whatever the base's Python version is.
RUN ln -s "$(/opt/serversinc/bin/python -c 'import dashboard, os; print(os.path.dirname(dashboard.__file__))')" \
    /opt/dashboard
# The repository's Streamlit settings (toolbar "minimal": no second Deploy button; theme).
COPY .streamlit/config.toml /home/serversinc/.streamlit/config.toml
ENV PATH=/opt/serversinc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/serversinc SERVERSINC_HOME=/data PYTHONUNBUFFERED=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false STREAMLIT_SERVER_HEADLESS=true
USER 10001:10001
WORKDIR /home/serversinc
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
  CMD ["serversinc-healthcheck", "http", "http://127.0.0.1:8501/_stcore/health"]
ENTRYPOINT ["streamlit", "run", "/opt/dashboard/app.py"]
CMD ["--server.address", "127.0.0.1", "--server.port", "8501"]
