"""CoNLL-2003 named-entity format (IOB2 tags) for a ``spans`` question, one file per split in a zip.

Each file starts with ``-DOCSTART- -X- -X- O``; each labeled item follows as one sentence block
(a token per line, ``token -X- _ TAG``, a blank line after the item). Tokens are runs of word
characters (with inner hyphens and apostrophes) and single punctuation marks; a token takes
``B-LABEL`` when a span starts in it and ``I-LABEL`` inside the span. IOB cannot nest: where
spans overlap, the one that starts first (then the longer) wins. ``spacy convert`` /
``spacy.training.converters.conll_ner_to_docs`` read it.
"""

from __future__ import annotations

import re

from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import ZipArchive
from goldlabel.formats.labeled import LabeledItem, LabeledWriter

NAME = "conll"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False

TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


def iob_tags(text: str, spans: list[dict]) -> list[tuple[str, str]]:
    """(token, tag) pairs for ``text`` with these ``[start, end)`` spans."""
    chosen: list[tuple[int, int, str]] = []
    last_end = -1
    for span in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        if span["start"] >= last_end:
            chosen.append((span["start"], span["end"], span["label"]))
            last_end = span["end"]
    out = []
    k = 0
    inside: tuple[int, int, str] | None = None
    for match in TOKEN.finditer(text):
        start, end = match.span()
        while k < len(chosen) and chosen[k][1] <= start:
            k += 1
        tag = "O"
        if k < len(chosen) and chosen[k][0] < end:
            span = chosen[k]
            tag = ("I-" if inside is span else "B-") + span[2]
            inside = span
        else:
            inside = None
        out.append((match.group(), tag))
    return out


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("spans",)

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        self.archive = ZipArchive(out)
        self.files = {}
        for split in SPLITS:
            self.files[split] = self.archive.member(f"{split}.txt")
            self.files[split].write(b"-DOCSTART- -X- -X- O\n\n")

    def write_item(self, item: LabeledItem) -> None:
        text = item.data.get(self.question.source)
        if not isinstance(text, str):
            return
        lines = [f"{token} -X- _ {tag}\n" for token, tag in iob_tags(text, item.value)]
        if lines:
            self.files[item.split].write(("".join(lines) + "\n").encode())

    def finish(self) -> None:
        self.archive.close()
