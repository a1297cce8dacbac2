"""The demo: two small projects made up at start from templates with a fixed seed (no downloads,
no data files), three users, all through the same services as everything else.

``seed_demo(ctx)`` is idempotent: users, projects and items are found by name / external_id
and only what is missing is created, so ``make demo`` can run again on the same database.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from goldlabel.schemas import ProjectCreate, QualitySettings
from goldlabel.services import imports as import_service
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context

SEED = 20240611
# The local operator reads as an admin (listing services want an actor; writes pass None).
_OPERATOR = Actor(id=0, username="local-operator", role="admin")

# username, global role, role in the demo projects. Passwords are random, made at the first
# start and printed then (fixed ones were known to anyone who read the docs: issue 17, item 10).
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("manager", "manager", "manager"),
    ("annotator1", "annotator", "annotator"),
    ("annotator2", "annotator", "annotator"),
)

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
    "is much smaller than advertised", "has a battery that dies by lunchtime", "was a pain to set up", "smells of plastic",
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
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
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
        rows.append(row)
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
    rng = random.Random(seed + 1)
    topics = list(_CUSTOMER)
    rows = []
    for i in range(n):
        asked = rng.sample(topics, k=1 if rng.random() < 0.7 else 2)
        fill = {"order": f"#{rng.randint(10000, 99999)}", "product": rng.choice(_PRODUCTS)}
        message = " ".join(rng.choice(_CUSTOMER[t]).format(**fill) for t in asked)
        _, reply = rng.choice(_REPLIES)
        rows.append({
            "external_id": f"ticket-{i + 1:03d}",
            "data": {"customer": message, "reply": reply},
            "meta": {"source": "goldlabel demo (synthetic)", "seed": seed},
        })
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


def _ensure_project(ctx: Context, name: str, make_spec, rows: list[dict], members: dict[int, str]) -> DemoProject:
    existing = _find_by(lambda after: project_service.list_projects(ctx, _OPERATOR, after, 500), "name", name)
    project = existing or project_service.create_project(ctx, None, make_spec())
    for user_id, role in members.items():
        project_service.set_member(ctx, None, project["id"], user_id, role)
    # Always run the (idempotent) import: a first start interrupted mid-way is completed.
    import_service.ingest_rows(ctx, None, project["id"], enumerate(rows, start=1), fmt="demo")
    return DemoProject(project["id"], name, len(rows), sum(1 for r in rows if "gold" in r), existing is None)


def seed_demo(ctx: Context) -> DemoSeed:
    """Create (or find) the demo users and projects; returns what the demo prints."""
    result = DemoSeed()
    members: dict[int, str] = {}
    for username, role, project_role in DEMO_USERS:
        row, user = _ensure_user(ctx, username, role)
        members[row["id"]] = project_role
        result.users.append(user)
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
        generate_reviews(),
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
        generate_support_replies(),
        members,
    ))
    return result
