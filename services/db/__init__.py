"""Database: typed models, the engine and sessions. Only repositories build queries."""
