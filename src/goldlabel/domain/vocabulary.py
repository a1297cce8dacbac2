"""The closed vocabularies of the platform: the words a role, an item, a lease, a consensus row,
an annotator's standing and a webhook delivery may take. The database checks them
(storage/tables.py builds its CHECK constraints from these), services validate input against
them, and the console lists them; all three read them here."""

from __future__ import annotations

#: project roles, least to most trusted is the reverse order of this tuple
ROLES = ("admin", "manager", "reviewer", "annotator")
ITEM_STATUSES = ("open", "final", "needs_review")
LEASE_STATUSES = ("active", "submitted", "skipped", "expired")
#: where a consensus row's label came from; "auto" (model auto-labels) is reserved.
CONSENSUS_SOURCES = ("consensus", "review", "gold", "auto")
ANNOTATOR_STATUSES = ("active", "qualifying", "suspended")
WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed")

__all__ = ["ANNOTATOR_STATUSES", "CONSENSUS_SOURCES", "ITEM_STATUSES", "LEASE_STATUSES", "ROLES",
           "WEBHOOK_DELIVERY_STATUSES"]
