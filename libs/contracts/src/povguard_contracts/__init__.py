"""The contract between services: shared vocabulary (the national form's allowed values) and the event catalogue.
Importing this package registers every event type in `povguard_contracts.catalogue.CATALOGUE`."""

from povguard_contracts import assessment as assessment
from povguard_contracts import intake as intake
from povguard_contracts import reporting as reporting
from povguard_contracts import review as review
from povguard_contracts import support as support

__all__ = ["assessment", "intake", "reporting", "review", "support"]
