"""``Client`` methods: the model in the loop: status, training, settings, label issues."""

from __future__ import annotations

from typing import Any

from goldlabel.client._base import UNSET, ClientBase, _changes


class ModelsMixin(ClientBase):
    """The model in the loop: its status, training, settings and label issues."""

    def get_model_status(self, project_id: int) -> dict[str, Any]:
        """The project model: settings, embedding progress, last error, auto-labeling (threshold,
        audits, achieved accuracy) and the versions with their metrics, newest first."""
        return self._request("GET", f"/projects/{int(project_id)}/models").json()

    def train_model(self, project_id: int) -> dict[str, Any]:
        """Train a new model version now (``queued``: true when the worker is busy with the
        project and trains next); the answer carries the new status."""
        return self._request("POST", f"/projects/{int(project_id)}/models/train").json()

    def update_model_settings(
        self,
        project_id: int,
        *,
        question: str = UNSET,
        retrain_every: int = UNSET,
        min_labels: int = UNSET,
        auto_label: bool = UNSET,
        target: float = UNSET,
        delta: float = UNSET,
        audit_fraction: float = UNSET,
        model_annotator: bool = UNSET,
        active_learning: str = UNSET,
        active_batch: int = UNSET,
        calibration_fraction: float = UNSET,
        review_calibration_slice: bool = UNSET,
        external_model: str | None = UNSET,
        external_role: str = UNSET,
        external_batch: int = UNSET,
    ) -> dict[str, Any]:
        """Change the given model settings only (auto-labeling, its target and audit share, the
        retrain cadence, the model as an annotator, the active-learning policy, the calibration
        slice's share and whether its items are reviewed for the bound, an external model: a URL
        or a registered entry point's name, None for none); answers the model status."""
        body = _changes(question=question, retrain_every=retrain_every, min_labels=min_labels,
                        auto_label=auto_label, target=target, delta=delta, audit_fraction=audit_fraction,
                        model_annotator=model_annotator, active_learning=active_learning,
                        active_batch=active_batch, calibration_fraction=calibration_fraction,
                        review_calibration_slice=review_calibration_slice,
                        external_model=external_model, external_role=external_role,
                        external_batch=external_batch)
        return self._request("PATCH", f"/projects/{int(project_id)}/models/settings", json=body).json()

    def list_label_issues(self, project_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """Final labels the newest model calls likely wrong, most suspicious first."""
        return self._request("GET", f"/projects/{int(project_id)}/models/audit", params={"limit": limit}).json()

    def send_label_issues_to_review(self, project_id: int, item_ids: list[int]) -> dict[str, Any]:
        """Send flagged items back to review with the audit's reason; ``{sent, skipped}``."""
        body = {"item_ids": [int(i) for i in item_ids]}
        return self._request("POST", f"/projects/{int(project_id)}/models/audit/review", json=body).json()
