"""The contract between services: shared vocabulary (the national form's allowed values) and the event catalogue.
Importing this package registers every event type in `povguard_platform.catalogue.CATALOGUE`."""

from povguard_platform.contracts import intake as intake

__all__ = ["intake"]
