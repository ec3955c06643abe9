"""Serversinc dashboard entry point: `streamlit run dashboard/app.py`.

This file only sets the page up and routes (st.navigation); each page lives in dashboard/views/.
The `dashboard` and `client` packages are installed (the venv's editable install, the image's
wheel), so nothing here touches sys.path.
A failed control-plane call anywhere on a page ends up here as an ApiError and becomes one red
banner ("cannot reach the control plane at …") instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from client.errors import ApiError
from dashboard import ui
from dashboard.api import banner, get_client

st.set_page_config(page_title="Serversinc", page_icon=":material/rocket_launch:", layout="wide")
ui.inject_css()

HERE = Path(__file__).resolve().parent
PAGES = [
    st.Page(HERE / "views" / "apps.py", title="Apps", icon=":material/apps:", url_path="apps", default=True),
    st.Page(HERE / "views" / "app_detail.py", title="App", icon=":material/deployed_code:", url_path="app"),
    st.Page(HERE / "views" / "deployment.py", title="Deployment", icon=":material/rocket_launch:",
            url_path="deployment"),
    st.Page(HERE / "views" / "servers.py", title="Servers", icon=":material/dns:", url_path="servers"),
]

page = st.navigation(PAGES, position="top")
try:
    page.run()
except ApiError as err:
    banner(err)

st.caption(f"Serversinc · control plane `{get_client().address}`")
