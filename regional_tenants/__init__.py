"""Tenant registry, comune boundaries and routing, API keys and roles, sharing and retention."""
