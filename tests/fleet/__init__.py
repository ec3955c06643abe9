"""Tests across several hosts: namespace test hosts (tests/support/hosts.py), each with its own
Docker engine, Tugboat agent and front door, driven by one control plane."""
