"""Streamlit dashboard: a gRPC client of the control plane."""
