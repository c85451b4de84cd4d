"""OCSE Warehouse dashboards: `streamlit run dashboards/app.py`.

The entry script is the frame around every page: page config, navigation, the snapshot
sidebar. A page is a file in `pages/` plus one `st.Page` line below, grouped by audience.
"""

import streamlit as st

from dashboards import frame

st.set_page_config(
    page_title=frame.TEXT["app_title"],
    page_icon=":material/shield:",
    layout="wide",
)

PAGES = {
    frame.TEXT["section_operations"]: [
        st.Page(
            "pages/pipeline_health.py",
            title=frame.TEXT["page_pipeline_health"],
            icon=":material/monitor_heart:",
            default=True,
        ),
    ],
}

page = st.navigation(PAGES)
snapshot = frame.require_snapshot()
frame.sidebar(frame.snapshot_info_or_stop(snapshot))
page.run()
