"""The contract between services: shared vocabulary (the national form's allowed values) and the event catalogue.
Importing this package registers every event type in `povguard_platform.catalogue.CATALOGUE`."""

from povguard_platform.contracts import assessment as assessment
from povguard_platform.contracts import intake as intake
from povguard_platform.contracts import review as review
from povguard_platform.contracts import support as support

__all__ = ["assessment", "intake", "review", "support"]
