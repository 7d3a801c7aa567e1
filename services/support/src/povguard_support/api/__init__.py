"""The support service's REST API under /v1."""
