"""The demo: two small projects made up at start from templates with a fixed seed (no downloads,
no data files), an admin, a manager and two annotators, all through the same services as
everything else. The two annotators have already answered part of each project (simulated from
the generator's own truth, with some mistakes), so the dashboard, its charts and the review
queue show something on first login.

``seed_demo(ctx)`` is idempotent: users, projects and items are found by name / external_id
and only what is missing is created (answers only for an annotator with none in the project),
so ``make demo`` can run again on the same database.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from goldlabel.domain.errors import GoldlabelError
from goldlabel.schemas import ProjectCreate, QualitySettings
from goldlabel.services import import_rows
from goldlabel.services import items as item_service
from goldlabel.services import models as model_service
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.item_refs import decode_item
from goldlabel.services.queue import answers as answers_service
from goldlabel.services.queue import lease as lease_service
from goldlabel.services.queue import submit as submit_service
from goldlabel.services.refit import refit_project

SEED = 20240611
# The local operator reads as an admin (listing services want an actor; writes pass None).
_OPERATOR = Actor(id=0, username="local-operator", role="admin")

# username, global role, role in the demo projects (None: no membership; an admin sees every
# project, including one created with `goldlabel projects create` and no --manager). Passwords
# are random, made at the first start and printed then (fixed ones were known to anyone who read
# the docs: issue 17, item 10).
DEMO_USERS: tuple[tuple[str, str, str | None], ...] = (
    ("manager", "manager", "manager"),
    ("annotator1", "annotator", "annotator"),
    ("annotator2", "annotator", "annotator"),
    ("admin", "admin", None),
)
# How many items each annotator answers at the demo's first start, and how often they are right.
SEEDED_ANSWERS = {"annotator1": (36, 0.92), "annotator2": (30, 0.8)}

SENTIMENT_PROJECT = "Demo: product review sentiment"
SUPPORT_PROJECT = "Demo: support reply quality"

SENTIMENT_SCHEMA: dict[str, Any] = {
    "questions": [
        {
            "name": "sentiment",
            "kind": "choice",
            "title": "What is the overall sentiment of this review?",
            "labels": ["positive", "negative", "neutral"],
        }
    ]
}

SUPPORT_SCHEMA: dict[str, Any] = {
    "questions": [
        {
            "name": "helpfulness",
            "kind": "rating",
            "title": "How helpful is the agent's reply?",
            "min": 1,
            "max": 5,
            "scale_labels": ["useless", "poor", "okay", "good", "excellent"],
        },
        {
            "name": "topics",
            "kind": "multi_choice",
            "title": "Which topics does the customer raise?",
            "labels": ["billing", "shipping", "returns", "account", "product quality"],
            "min_selections": 1,
        },
        {
            "name": "better_reply",
            "kind": "text",
            "title": "A better reply",
            "required": False,
            "max_length": 2000,
        },
    ]
}

SENTIMENT_INSTRUCTIONS = """\
Read the product review and pick its **overall** sentiment.

- **positive**: the customer is happy with the product overall.
- **negative**: the customer is unhappy overall (broken, returned, would not buy again).
- **neutral**: neither, or praise and complaints balance out.

Judge the text, not the product: a review that praises a product you dislike is still positive.
The reviews are synthetic (generated from templates), so some read a little odd.
"""

SUPPORT_INSTRUCTIONS = """\
Each item is a customer message and the support agent's reply.

1. Rate how helpful the reply is, from 1 (useless) to 5 (excellent): does it answer what was
   asked, correctly and politely?
2. Tick every topic the **customer** raises.
3. Optionally, write a better reply.
"""

# --- product reviews --------------------------------------------------------------------------

_PRODUCTS = (
    "wireless earbuds", "coffee grinder", "running shoes", "desk lamp", "phone case", "backpack",
    "blender", "yoga mat", "e-reader", "water bottle", "electric kettle", "office chair",
    "bluetooth speaker", "air fryer", "mechanical keyboard", "rain jacket", "baby monitor",
    "cordless drill", "smart watch", "cast iron pan",
)
_POSITIVE = (
    "works perfectly", "exceeded my expectations", "is worth every penny", "feels sturdy and well made",
    "has a battery that lasts for days", "was easy to set up", "looks even better than in the photos",
    "is really comfortable", "arrived a day early", "is quiet and fast", "does exactly what I needed",
    "has held up to daily use for months",
)
_NEGATIVE = (
    "stopped working after a week", "feels cheap and flimsy", "arrived damaged",
    "is much smaller than advertised", "has a battery that dies by lunchtime", "was a pain to set up",
    "smells of plastic",
    "broke the second time I used it", "is far too loud", "never connected to my phone",
    "started peeling within a month",
)
_NEUTRAL = (
    "does what it says", "is about what you would expect for the price", "arrived on time",
    "is fine for occasional use", "is nothing special", "came in plain packaging",
    "is the same as the one it replaced",
)
_OPENERS = (
    "", "", "", "Bought this as a gift. ", "Second one I have owned. ", "Ordered on a whim. ",
    "Used it every day for a month. ", "Replaced my old one with this. ",
)
_CLOSERS = {
    "positive": ("Would buy again.", "Highly recommend.", "Five stars.", "Very happy.", ""),
    "negative": ("Returning it.", "Save your money.", "One star.", "Very disappointed.", ""),
    "neutral": ("It's fine.", "Three stars.", "No complaints, no praise.", ""),
}
_POOLS = {"positive": _POSITIVE, "negative": _NEGATIVE, "neutral": _NEUTRAL}
_SENTIMENTS = ("positive", "negative", "neutral")


def generate_reviews(n: int = 200, seed: int = SEED, gold: int = 12) -> list[dict[str, Any]]:
    """``n`` import rows of synthetic product reviews, the same for the same seed.

    About one review in six is mixed (praise *and* a complaint), where annotators will
    reasonably disagree; the first ``gold`` clear-cut reviews carry a gold answer, and every
    review carries a prediction from a pretend keyword model that is right about 80% of the time.
    """
    return [row for row, _ in _reviews_with_truth(n, seed, gold)]


def _reviews_with_truth(n: int, seed: int, gold: int) -> list[tuple[dict[str, Any], str]]:
    """The rows of :func:`generate_reviews`, each with the sentiment it was written with."""
    rng = random.Random(seed)  # nosec B311  # demo data, seeded for reproducibility; no secret
    rows: list[tuple[dict[str, Any], str]] = []
    clear_rows: list[tuple[dict[str, Any], str]] = []
    for i in range(n):
        product = rng.choice(_PRODUCTS)
        opener = rng.choice(_OPENERS)
        if rng.random() < 0.17:
            good, bad = rng.choice(_POSITIVE), rng.choice(_NEGATIVE)
            truth = rng.choice(_SENTIMENTS)
            closer = rng.choice(_CLOSERS[truth])
            text = f"{opener}The {product} {good}, but it {bad}. {closer}"
            clear = False
        else:
            truth = rng.choices(_SENTIMENTS, weights=(5, 3, 2))[0]
            phrase = rng.choice(_POOLS[truth])
            closer = rng.choice(_CLOSERS[truth])
            extra = rng.choice(_POOLS[truth])
            body = f"The {product} {phrase}" + (f" and {extra}" if extra != phrase and rng.random() < 0.4 else "")
            text = f"{opener}{body}. {closer}"
            clear = True
        predicted = truth if rng.random() < 0.8 else rng.choice([s for s in _SENTIMENTS if s != truth])
        row: dict[str, Any] = {
            "external_id": f"review-{i + 1:04d}",
            "data": {"text": text.strip(), "product": product},
            "meta": {"source": "goldlabel demo (synthetic)", "seed": seed},
            "predictions": [
                {"value": {"sentiment": predicted}, "score": round(rng.uniform(0.55, 0.99), 2),
                 "model_version": "demo-keywords-1"}
            ],
        }
        if clear:
            clear_rows.append((row, truth))
        rows.append((row, truth))
    # Gold spread over the whole project, and only on reviews with one clear answer.
    for row, truth in rng.sample(clear_rows, min(gold, len(clear_rows))):
        row["gold"] = {"sentiment": truth}
    return rows


# --- support replies --------------------------------------------------------------------------

_CUSTOMER = {
    "billing": ("I was charged twice for order {order}.", "Why did my subscription price go up?",
                "Can I get an invoice with my company's VAT number?"),
    "shipping": ("Order {order} still has not arrived after two weeks.", "Do you ship to Norway?",
                 "The tracking link for order {order} does not work."),
    "returns": ("How do I return the {product}?", "I sent the {product} back ten days ago; where is my refund?",
                "Can I exchange the {product} for a different size?"),
    "account": ("I cannot log in since I changed my email.", "Please delete my account.",
                "How do I change the delivery address on my account?"),
    "product quality": ("The {product} stopped working after a week.", "The {product} arrived scratched.",
                        "Is the {product} supposed to get this hot?"),
}
_REPLIES = (
    (5, "Sorry about that! I have refunded the duplicate charge; you will see it within 3-5 business days."),
    (5, ("Thanks for reaching out. I have sent a prepaid return label to your email; the refund is "
         "issued the day the parcel reaches us.")),
    (4, "I have escalated this to our shipping partner and will update you within 48 hours."),
    (4, "You can change this under Settings > Account. Let me know if anything is unclear."),
    (3, "Please check our FAQ, it should answer your question."),
    (3, "We are looking into it."),
    (2, "That is handled by another department."),
    (1, "Please do not contact us again about this."),
    (1, "ok"),
)


def generate_support_replies(n: int = 40, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` import rows: a customer message (one or two topics) and an agent reply of mixed quality."""
    return [row for row, _ in _support_with_truth(n, seed)]


def _support_with_truth(n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The rows of :func:`generate_support_replies`, each with the answer it was written for."""
    rng = random.Random(seed + 1)  # nosec B311  # demo data, seeded for reproducibility; no secret
    topics = list(_CUSTOMER)
    rows = []
    for i in range(n):
        asked = rng.sample(topics, k=1 if rng.random() < 0.7 else 2)
        fill = {"order": f"#{rng.randint(10000, 99999)}", "product": rng.choice(_PRODUCTS)}
        message = " ".join(rng.choice(_CUSTOMER[t]).format(**fill) for t in asked)
        quality, reply = rng.choice(_REPLIES)
        rows.append(({
            "external_id": f"ticket-{i + 1:03d}",
            "data": {"customer": message, "reply": reply},
            "meta": {"source": "goldlabel demo (synthetic)", "seed": seed},
        }, {"helpfulness": quality, "topics": sorted(asked)}))
    return rows


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class DemoUser:
    username: str
    role: str
    password: str | None  # known only when the demo created the user (this start)
    is_new: bool


@dataclass
class DemoProject:
    id: int
    name: str
    items: int
    gold: int
    is_new: bool
    answers_seeded: int = 0
    model: str | None = None  # the project model's version and metrics, or why there is none


@dataclass
class DemoSeed:
    users: list[DemoUser] = field(default_factory=list)
    projects: list[DemoProject] = field(default_factory=list)


def _find_by(rows_of, key: str, value: Any) -> dict | None:
    after = 0
    while True:
        page = rows_of(after)
        for row in page:
            if row[key] == value:
                return row
        if len(page) < 500:
            return None
        after = page[-1]["id"]


def demo_password() -> str:
    """A random password (96 bits), printed once."""
    return secrets.token_urlsafe(12)


def _ensure_user(ctx: Context, username: str, role: str) -> tuple[dict, DemoUser]:
    existing = _find_by(lambda after: user_service.list_users(ctx, _OPERATOR, after, 500), "username", username)
    if existing is None:
        password = demo_password()
        row = user_service.create_user(ctx, None, username, role, password)
        return row, DemoUser(username, row["role"], password, True)
    return existing, DemoUser(username, existing["role"], None, False)


def _ensure_project(
    ctx: Context, name: str, make_spec, rows: list[dict], members: dict[int, str | None]
) -> DemoProject:
    existing = _find_by(lambda after: project_service.list_projects(ctx, _OPERATOR, after, 500), "name", name)
    project = existing or project_service.create_project(ctx, None, **make_spec().model_dump())
    for user_id, role in members.items():
        if role is not None:
            project_service.set_member(ctx, None, project["id"], user_id, role)
    # Always run the (idempotent) import: a first start interrupted mid-way is completed.
    import_rows.ingest_rows(ctx, None, project["id"], enumerate(rows, start=1), fmt="demo")
    return DemoProject(project["id"], name, len(rows), sum(1 for r in rows if "gold" in r), existing is None)


def _sentiment_answer(truth: str, accuracy: float, rng: random.Random) -> dict[str, Any]:
    if rng.random() < accuracy:
        return {"sentiment": truth}
    return {"sentiment": rng.choice([s for s in _SENTIMENTS if s != truth])}


def _support_answer(truth: dict[str, Any], accuracy: float, rng: random.Random) -> dict[str, Any]:
    rating, topics = truth["helpfulness"], list(truth["topics"])
    if rng.random() >= accuracy:  # one point off, as people disagree about "good" and "okay"
        rating = min(5, max(1, rating + rng.choice((-1, 1))))
    if rng.random() >= accuracy:
        extra = [t for t in _CUSTOMER if t not in topics]
        topics = sorted([*topics, rng.choice(extra)]) if len(topics) == 1 else topics[:1]
    return {"helpfulness": rating, "topics": topics}


def _seed_answers(ctx: Context, project_id: int, annotator: Actor, truths: dict[str, Any], answer_for,
                  count: int, accuracy: float, rng: random.Random) -> int:
    """Let ``annotator`` answer up to ``count`` items through the real queue (lease, then submit),
    answering from the generator's truth, right with probability about ``accuracy``. Only for
    an annotator with no answer in the project yet: a second start adds nothing."""
    if answers_service.list_my_answers(ctx, annotator, project_id, 0, 1):
        return 0
    ids = {}
    after = 0
    while page := item_service.list_items(ctx, _OPERATOR, project_id, after, 500):
        ids.update({r["id"]: r["external_id"] for r in page})
        after = page[-1]["id"]
    done = 0
    while done < count and (lease := lease_service.lease_next(ctx, annotator, project_id)) is not None:
        value = answer_for(truths[ids[decode_item(ctx, project_id, annotator.id, lease["item"]["id"])]], accuracy, rng)
        submit_service.submit_answer(ctx, annotator, project_id, lease["token"], value,
                                    duration_ms=rng.randint(2_500, 14_000))
        done += 1
    return done


def _seed_project_answers(ctx: Context, project: DemoProject, annotators: dict[str, Actor], truths: dict[str, Any],
                          answer_for) -> None:
    # the same answers on every fresh demo
    rng = random.Random(f"{SEED}-{project.name}")  # nosec B311  # demo data, seeded for reproducibility; no secret
    for username, (count, accuracy) in SEEDED_ANSWERS.items():
        project.answers_seeded += _seed_answers(ctx, project.id, annotators[username], truths, answer_for, count,
                                                accuracy, rng)
    if project.answers_seeded:
        # Learn skills and consensus from the seeded answers now, not a minute after first login.
        refit_project(ctx, None, project.id)


def seed_demo(ctx: Context) -> DemoSeed:
    """Create (or find) the demo users and projects; returns what the demo prints."""
    result = DemoSeed()
    members: dict[int, str | None] = {}
    annotators: dict[str, Actor] = {}
    for username, role, project_role in DEMO_USERS:
        row, user = _ensure_user(ctx, username, role)
        members[row["id"]] = project_role
        result.users.append(user)
        if project_role == "annotator":
            annotators[username] = Actor(row["id"], row["username"], row["role"])
    reviews = _reviews_with_truth(200, SEED, 12)
    support = _support_with_truth(40, SEED)
    result.projects.append(_ensure_project(
        ctx,
        SENTIMENT_PROJECT,
        lambda: ProjectCreate(
            name=SENTIMENT_PROJECT,
            description="Synthetic product reviews: one choice question, gold items, model predictions.",
            instructions=SENTIMENT_INSTRUCTIONS,
            label_schema=SENTIMENT_SCHEMA,
            overlap_min=2,
            overlap_max=3,
            settings=QualitySettings(target_confidence=0.9, gold_rate=0.1),
        ),
        [row for row, _ in reviews],
        members,
    ))
    result.projects.append(_ensure_project(
        ctx,
        SUPPORT_PROJECT,
        lambda: ProjectCreate(
            name=SUPPORT_PROJECT,
            description="Synthetic support tickets: a rating, a multi-choice and a free-text question.",
            instructions=SUPPORT_INSTRUCTIONS,
            label_schema=SUPPORT_SCHEMA,
            overlap_min=1,
            overlap_max=2,
        ),
        [row for row, _ in support],
        members,
    ))
    for project, rows, answer_for in ((result.projects[0], reviews, _sentiment_answer),
                                      (result.projects[1], support, _support_answer)):
        truths = {row["external_id"]: truth for row, truth in rows}
        _seed_project_answers(ctx, project, annotators, truths, answer_for)
    _train_model(ctx, result.projects[0])
    return result


def _train_model(ctx: Context, project: DemoProject) -> None:
    """Train the sentiment project's model on its final labels (human consensus + gold), so the
    Models page shows a version with metrics from the first start (about a second: the labeled
    items embedded, a cross-fitted logistic regression). A later start reuses it."""
    try:
        current = model_service.status(ctx, None, project.id)["current_version"]
        if current is None:
            # only the labeled items are embedded now; the server's model worker does the rest
            model_service.request_training(ctx, None, project.id, embed_budget_s=0)
            current = model_service.status(ctx, None, project.id)["current_version"]
    except GoldlabelError as exc:  # e.g. the embedder wheels are missing: the demo runs without a model
        project.model = f"no model: {exc.detail}"
        return
    if current is None:
        project.model = "no model yet: too few final labels"
        return
    metrics = current["metrics"]
    project.model = (f"model {current['version']}: {current['labels']} labels, held-out accuracy "
                     f"{metrics['accuracy']:.2f}, ECE {metrics['ece']:.2f}")
