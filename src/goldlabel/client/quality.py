"""``Client`` methods: annotators, agreement, re-fit and review."""

from __future__ import annotations

from typing import Any, Literal

from goldlabel.client._base import ClientBase, ReviewAction


class QualityMixin(ClientBase):
    """Annotators (list, status), agreement, the re-fit and the review of items."""

    def list_annotators(self, project_id: int) -> list[dict[str, Any]]:
        """Every annotator who answered in the project: answers, gold accuracy, estimated skill
        with its interval, status and the evidence behind it."""
        return self._request("GET", f"/projects/{int(project_id)}/annotators").json()

    def set_annotator_status(
        self, project_id: int, annotator_id: int, status: Literal["active", "suspended"]
    ) -> dict[str, Any]:
        """Suspend an annotator in this project (no more work is leased to them) or reinstate them."""
        path = f"/projects/{int(project_id)}/annotators/{int(annotator_id)}"
        return self._request("PATCH", path, json={"status": status}).json()

    def get_agreement(self, project_id: int) -> dict[str, Any]:
        """Inter-annotator agreement (Krippendorff's alpha, Fleiss' kappa) per choice question."""
        return self._request("GET", f"/projects/{int(project_id)}/agreement").json()

    def refit_project(self, project_id: int) -> dict[str, Any]:
        """Re-fit the project's aggregation model now instead of waiting for the background run."""
        return self._request("POST", f"/projects/{int(project_id)}/refit").json()

    def review_item(
        self,
        project_id: int,
        item_id: int,
        action: ReviewAction,
        *,
        value: dict[str, Any] | None = None,
        comment: str = "",
    ) -> dict[str, Any]:
        """Accept the item's consensus, reject it back to the queue, or ``fix`` it with ``value``."""
        body = {"action": action, "value": value, "comment": comment}
        path = f"/projects/{int(project_id)}/items/{int(item_id)}/reviews"
        return self._request("POST", path, json=body).json()

    def list_reviews(self, project_id: int, item_id: int) -> list[dict[str, Any]]:
        """The item's reviews, oldest first."""
        return self._request(
            "GET", f"/projects/{int(project_id)}/items/{int(item_id)}/reviews"
        ).json()
