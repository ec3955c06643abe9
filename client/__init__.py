"""The one client library of the control plane's public API (serversinc.v1), shared by the CLI,
the webhook bridge and the dashboard: the connection and its credentials (`connection`), reading
every page of a List call (`pages`), following a deployment's events (`watch`), turning a failed
call into a person's message (`errors`) and the short names both tools show (`names`).
Nothing here prints or draws; each client keeps its own presentation."""
