"""One-off command runs of an app's serving release (serversinc run)."""
