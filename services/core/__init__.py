"""Domain pieces shared by every control-plane package: errors, validation, value types."""
