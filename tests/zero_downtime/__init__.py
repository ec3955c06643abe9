"""Zero-downtime routing through HAProxy: real Docker, real HAProxy, real HTTP."""
