"""Consensus for the question kinds other than ``choice``, one module per kind.

Each module holds its kind's per-answer function (``<kind>_consensus``, one item) and its
re-fit (``_refit_<kind>``, all items at once); :mod:`._common` holds the one-coin helpers they
share. The entry points, the dispatch and the model of every kind are in
:mod:`goldlabel.services.consensus_kinds`.
"""
