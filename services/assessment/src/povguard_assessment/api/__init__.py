"""The REST API of assessment (all under /v1)."""
