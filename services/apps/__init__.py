"""Apps: what a user registers (repository, branch, port, health check, env)."""
