"""Regional data models: Smart Data Models with Tuscan profiles, offline validation, conversion."""
