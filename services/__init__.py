"""Serversinc control plane: apps, deployments, git, servers, the job queue and the deploy worker."""
