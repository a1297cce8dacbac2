"""The queue policy as a pure function: no database, no clock, no randomness of its own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from goldlabel.domain.queue_policy import (
    QUEUE_ORDER,
    AnnotatorProgress,
    Candidate,
    QueuePolicy,
    pick_next,
    rank_key,
)

NO_GOLD = QueuePolicy()
FRESH = AnnotatorProgress()


def c(id: int, priority: int = 0, answers: int = 0, gold: bool = False) -> Candidate:
    return Candidate(id, priority, answers, gold)


def test_empty_queue_gives_none():
    assert pick_next([], [], NO_GOLD, FRESH, 0.5) is None


def test_higher_priority_first():
    normal = [c(1, priority=0, answers=2), c(2, priority=5), c(3, priority=1, answers=2)]
    assert pick_next(normal, [], NO_GOLD, FRESH, 0.5).id == 2


def test_closest_to_completion_first_within_a_priority():
    normal = [c(1, answers=0), c(2, answers=2), c(3, answers=1)]
    assert pick_next(normal, [], NO_GOLD, FRESH, 0.5).id == 2


def test_fifo_among_equals():
    normal = [c(7), c(3), c(5)]
    assert pick_next(normal, [], NO_GOLD, FRESH, 0.5).id == 3


def test_order_is_priority_then_completion_then_id():
    # The SQL ORDER BY is built from QUEUE_ORDER; it must say the same as rank_key.
    assert QUEUE_ORDER == (("priority", "desc"), ("answer_count", "desc"), ("id", "asc"))
    items = [c(i, priority=p, answers=a) for i, (p, a) in enumerate([(0, 0), (1, 0), (0, 3), (1, 2), (1, 2)], 1)]
    assert [x.id for x in sorted(items, key=rank_key)] == [4, 5, 2, 3, 1]


def test_gold_injected_when_draw_below_rate():
    policy = QueuePolicy(gold_rate=0.2)
    normal, gold = [c(1)], [c(9, gold=True)]
    assert pick_next(normal, gold, policy, FRESH, 0.19).id == 9
    assert pick_next(normal, gold, policy, FRESH, 0.2).id == 1
    assert pick_next(normal, gold, policy, FRESH, 0.99).id == 1


def test_gold_rate_statistically():
    """With a fixed, evenly spread sequence of draws the share of gold equals the rate."""
    normal, gold = [c(1), c(2)], [c(100, gold=True)]
    n = 10_000
    draws = [(i * 0.6180339887) % 1.0 for i in range(n)]  # low-discrepancy, deterministic
    for rate in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0):
        policy = QueuePolicy(gold_rate=rate)
        got = sum(pick_next(normal, gold, policy, FRESH, d).is_gold for d in draws)
        assert abs(got / n - rate) < 0.005, (rate, got)


def test_gold_rate_with_seeded_random_draws():
    import random

    rng = random.Random(1234)
    policy = QueuePolicy(gold_rate=0.1)
    n = 20_000
    got = sum(pick_next([c(1)], [c(2, gold=True)], policy, FRESH, rng.random()).is_gold for _ in range(n))
    # binomial sd = sqrt(n p (1-p)) ~ 42; allow 5 sd
    assert abs(got - 2000) < 5 * 43


def test_no_gold_without_gold_rate():
    assert pick_next([c(1)], [c(2, gold=True)], NO_GOLD, FRESH, 0.0).id == 1


def test_no_gold_when_no_normal_work():
    policy = QueuePolicy(gold_rate=1.0)
    assert pick_next([], [c(2, gold=True)], policy, FRESH, 0.0) is None


def test_qualification_gold_first_then_rate():
    policy = QueuePolicy(gold_rate=0.0, qualification_gold=3)
    normal, gold = [c(1, priority=100)], [c(5, gold=True), c(4, gold=True)]
    for answered in range(3):
        choice = pick_next(normal, gold, policy, AnnotatorProgress(gold_answered=answered), 0.99)
        assert choice.id == 4  # best gold by rank, whatever the draw and the normal priority
    assert pick_next(normal, gold, policy, AnnotatorProgress(gold_answered=3), 0.0).id == 1


def test_qualification_gold_served_even_without_normal_work():
    policy = QueuePolicy(qualification_gold=2)
    assert pick_next([], [c(4, gold=True)], policy, AnnotatorProgress(1), 0.5).id == 4
    assert pick_next([], [c(4, gold=True)], policy, AnnotatorProgress(2), 0.5) is None


def test_qualification_with_no_gold_left_falls_back_to_normal():
    policy = QueuePolicy(qualification_gold=5)
    assert pick_next([c(1)], [], policy, FRESH, 0.5).id == 1


def test_best_gold_by_rank():
    policy = QueuePolicy(gold_rate=1.0)
    gold = [c(10, gold=True), c(11, priority=3, gold=True), c(12, answers=4, gold=True)]
    assert pick_next([c(1)], gold, policy, FRESH, 0.0).id == 11


candidates = st.builds(
    Candidate,
    id=st.integers(1, 10_000),
    priority=st.integers(-3, 3),
    answer_count=st.integers(0, 5),
)


@given(
    normal=st.lists(candidates, max_size=8, unique_by=lambda x: x.id),
    gold=st.lists(candidates.map(lambda x: Candidate(x.id + 20_000, x.priority, x.answer_count, True)), max_size=4),
    rate=st.floats(0, 1),
    qual=st.integers(0, 3),
    answered=st.integers(0, 4),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_properties(normal, gold, rate, qual, answered, draw):
    policy = QueuePolicy(gold_rate=rate, qualification_gold=qual)
    choice = pick_next(normal, gold, policy, AnnotatorProgress(answered), draw)
    if choice is None:
        # Nothing only when there is no normal work and no qualification gold due.
        assert not normal
        assert not (gold and answered < qual)
        return
    assert choice in normal or choice in gold  # never an item that was not offered
    if choice in gold and choice not in normal:
        assert choice == min(gold, key=rank_key)
        assert answered < qual or (normal and draw < rate)
    else:
        assert choice == min(normal, key=rank_key)
        if gold:
            assert answered >= qual and draw >= rate


@given(normal=st.lists(candidates, min_size=1, max_size=8, unique_by=lambda x: x.id), draw=st.floats(0, 1))
def test_input_order_does_not_matter(normal, draw):
    assert pick_next(normal, [], NO_GOLD, FRESH, draw) == pick_next(list(reversed(normal)), [], NO_GOLD, FRESH, draw)
