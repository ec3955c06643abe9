"""App health between deploys: the monitor that polls each server's agent, and the rules it applies."""
