"""Label schema: the ``ranking`` kind (pairwise comparison included) and its candidates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from goldlabel.domain.errors import FieldError, invalid
from goldlabel.domain.label_schema.base import Question, _preview
from goldlabel.domain.label_schema.validation import Loc, _err, _is_int, _type_name, _wrong_type


@dataclass(frozen=True, slots=True, kw_only=True)
class RankingQuestion(Question):
    """Order all candidates, best first. Pairwise comparison is a ranking of two candidates.

    Candidates are fixed (``candidates``) or read per item from the list ``item_data[source]``:
    their ``id`` fields when every entry is an object with an ``id``, else their indexes, always as
    strings. Answer: a list of candidate ids; with ``allow_ties`` a list of groups (lists of ids),
    best group first, where the ids inside one group are tied. Integer ids in an answer are
    accepted and normalized to strings; tie groups are normalized to sorted order.
    """

    kind: ClassVar[str] = "ranking"
    candidates: tuple[str, ...] | None = None
    source: str | None = None
    allow_ties: bool = False
    _candidate_set: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.candidates is None and self.source is None:
            object.__setattr__(self, "source", "responses")
        cands = None if self.candidates is None else frozenset(self.candidates)
        object.__setattr__(self, "_candidate_set", cands)

    def _options_json(self) -> dict[str, Any]:
        return {"candidates": None if self.candidates is None else list(self.candidates),
                "source": self.source if self.candidates is None else None,
                "allow_ties": self.allow_ties}

    def get_candidates(self, item_data: Mapping[str, Any] | None) -> tuple[str, ...] | None:
        """The candidate ids for this item; ``None`` when they depend on absent item data.

        Raises ``invalid`` when the item data cannot supply candidates.
        """
        errors: list[FieldError] = []
        cands = self._candidates_for(item_data, ("data", self.source or ""), errors)
        if errors:
            raise invalid(errors)
        return cands

    def _candidates_for(self, item_data: Mapping[str, Any] | None, loc: Loc,
                        errors: list[FieldError]) -> tuple[str, ...] | None:
        if self.candidates is not None:
            return self.candidates
        if item_data is None:
            return None
        source = self.source or "responses"
        entries = item_data.get(source)
        if entries is None:
            _err(errors, loc, "missing_source",
                 f"question {self.name!r} ranks the candidates in item data field {source!r}, "
                 "which is absent")
            return None
        if not isinstance(entries, list):
            _err(errors, loc, "bad_source",
                 f"item data field {source!r} must be a list of candidates, "
                 f"got {_type_name(entries)}")
            return None
        if len(entries) < 2:
            _err(errors, loc, "bad_source",
                 f"item data field {source!r} must hold at least 2 candidates, "
                 f"got {len(entries)}")
            return None
        if all(isinstance(e, Mapping) and _is_candidate_id(e.get("id")) for e in entries):
            ids = tuple(str(e["id"]) for e in entries)
            if len(set(ids)) != len(ids):
                _err(errors, loc, "bad_source",
                     f"the candidates in item data field {source!r} have duplicate ids")
                return None
            return ids
        return tuple(str(i) for i in range(len(entries)))

    def check_item_data(self, item_data: Mapping[str, Any], loc: Loc,
                        errors: list[FieldError]) -> None:
        if self.candidates is None:
            self._candidates_for(item_data, (*loc, self.source or "responses"), errors)

    def check(self, value: Any, item_data: Mapping[str, Any] | None, loc: Loc,
              errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            what = "a list of groups of candidate ids" if self.allow_ties else \
                "a list of candidate ids"
            _wrong_type(errors, loc, what, value)
            return None
        n_errors = len(errors)
        if self._candidate_set is not None:
            candidates: tuple[str, ...] | None = self.candidates
            candidate_set: frozenset[str] | None = self._candidate_set
        else:
            candidates = self._candidates_for(item_data, loc, errors)
            if len(errors) > n_errors:
                return None
            candidate_set = None if candidates is None else frozenset(candidates)
        seen: set[str] = set()

        def check_id(cid: Any, where: Loc) -> str | None:
            if _is_int(cid):
                cid = str(cid)
            elif not isinstance(cid, str):
                _wrong_type(errors, where, "a candidate id string", cid)
                return None
            if candidate_set is not None and cid not in candidate_set:
                _err(errors, where, "ranking_not_permutation",
                     f"unknown candidate {cid!r}; candidates: {_preview(candidates or ())}")
                return None
            if cid in seen:
                _err(errors, where, "ranking_not_permutation",
                     f"candidate {cid!r} appears more than once")
                return None
            seen.add(cid)
            return str(cid)

        result: list[Any] = []
        if self.allow_ties:
            for g, group in enumerate(value):
                if not isinstance(group, list):
                    _wrong_type(errors, (*loc, g), "a list of tied candidate ids", group)
                    continue
                if not group:
                    _err(errors, (*loc, g), "empty_group", "a tie group must not be empty")
                    continue
                ids = [check_id(cid, (*loc, g, j)) for j, cid in enumerate(group)]
                result.append(sorted(i for i in ids if i is not None))
        else:
            for i, cid in enumerate(value):
                result.append(check_id(cid, (*loc, i)))
        if candidates is not None and len(seen) < len(candidates):
            missing = [c for c in candidates if c not in seen]
            _err(errors, loc, "ranking_not_permutation",
                 f"the ranking must order every candidate; missing: {_preview(missing)}")
        if len(errors) > n_errors:
            return None
        return result


def _is_candidate_id(value: Any) -> bool:
    return isinstance(value, str) or _is_int(value)
