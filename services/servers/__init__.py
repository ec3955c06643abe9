"""Servers: the Tugboat agents the control plane deploys to, and how they enroll."""
