"""The project model inside the platform: embeddings of the items, training on the human final
labels, predictions as pre-labels, calibrated auto-labeling with audits, and the label-error
audit. The maths is ``goldlabel.models``; this package reads and writes the database around it.

One pass over a project (:func:`process_project`, run by the background worker in
``services/model_worker.py`` and by ``POST /projects/{id}/models/train``):

1. embed items that have no embedding yet, in batches (labeled items first); a text whose
   content hash another item already has reuses that vector (never embedded twice). Items
   without a label wait until a model exists (or one is trained in this pass) or active
   learning is on: nothing reads their vectors before;
2. predict the newly embedded items with the current model version (pre-labels);
3. retrain when asked to, or once ``retrain_every`` new final labels arrived: a cross-fitted
   logistic regression (``goldlabel.models.ProjectModel``); its out-of-fold probabilities give
   the held-out accuracy, the ECE, the auto-label threshold (Clopper-Pearson, fixed-sequence) and
   the label-error audit; then every embedded item gets a prediction of the new version;
4. with auto-labeling on, items above the threshold become final with consensus source
   ``auto``; a random ``audit_fraction`` of them stays with the humans instead; with
   ``review_calibration_slice`` (the default) the threshold is chosen on reviewed slice labels
   only, and each training run sends the final calibration-slice items to review;
5. audits the humans finished are compared with the model's label; when their bound says the
   auto-labels' accuracy is below the target, auto-labeling switches itself off (an event, a
   reason shown in the console).

A model or an embedder that fails records its error (console, API, event log) and leaves the
items with the humans: nothing here is on the annotate path, so the queue never waits for it.

The modules, one concern each, each importing only those above it in this list (the
import-linter contract ``services-models-one-way`` in pyproject.toml keeps it so):

- ``settings``: the settings model, the project's model state, the question the model learns;
- ``calibration``: the calibration slice (its key, which items are in it);
- ``errors``: a failure of the embedder or the model, and its record;
- ``predictions``: a version's fitted model and the predictions it writes;
- ``embedding``: the embedder, an item's text, the worker's embedding step;
- ``training``: a training run (threshold, metrics, label-error audit, predictions);
- ``autolabel``: auto-labeling, its audits, the calibration slice sent to review;
- ``external``: an external model's predictions;
- ``priorities``: active learning's queue priorities;
- ``prelabels``: the pre-label outcomes of new answers;
- ``worker``: one pass over a project;
- ``views``: the status the console, API and CLI show;
- ``label_issues``: the label-error audit's list, and sending flagged items to review;
- ``actions``: new settings, a training run now.

This ``__init__`` re-exports the names the layers above call; the package's own helpers are
imported from their module.
"""

from __future__ import annotations

from goldlabel.services.models.actions import request_training, update_settings
from goldlabel.services.models.calibration import in_slice
from goldlabel.services.models.label_issues import ISSUES_LIMIT_MAX, label_audit, send_issues_to_review
from goldlabel.services.models.settings import annotator_question
from goldlabel.services.models.views import status
from goldlabel.services.models.worker import process_project

__all__ = [
    "ISSUES_LIMIT_MAX",
    "annotator_question",
    "in_slice",
    "label_audit",
    "process_project",
    "request_training",
    "send_issues_to_review",
    "status",
    "update_settings",
]
