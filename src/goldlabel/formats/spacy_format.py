"""spaCy ``DocBin`` files for a ``spans`` question: ``<split>/<split>-NNNN.spacy`` in a zip.

Each labeled item becomes a ``Doc`` tokenized by a blank multi-language pipeline, with its
consensus spans in ``doc.ents`` (for the entity recognizer), widened to token boundaries; where
an item's spans overlap (which entities cannot hold) all of them also go to ``doc.spans["sc"]``
(for the span categorizer). Beside each shard, ``<shard>.jsonl`` lists every doc's external_id
and confidence in doc order. (Not ``doc.user_data``: spaCy serialises it, and span groups, with
one msgpack call per doc that scans the installed packages' entry points: 10x slower.) A DocBin
keeps its documents in memory, so files are sharded every ``SHARD_DOCS`` documents. ``spacy
train`` takes the folder of a split as its corpus path. Needs spaCy (``pip install
'goldlabel[formats]'``).
"""

from __future__ import annotations

import orjson

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import ZipArchive
from goldlabel.formats.labeled import LabeledItem, LabeledWriter

NAME = "spacy"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False
SHARD_DOCS = 1000
VOCAB_RESET_STRINGS = 50_000


def _spacy():
    try:
        import spacy
    except ImportError as exc:
        raise GoldlabelError(
            "the spacy format needs spaCy: pip install 'goldlabel[formats]'",
            code="format_unavailable", status=422,
        ) from exc
    return spacy


class Writer(LabeledWriter):
    NAME = NAME
    KINDS = ("spans",)

    @classmethod
    def check(cls, schema, question) -> None:
        super().check(schema, question)
        _spacy()

    def __init__(self, out, questions, **options) -> None:
        super().__init__(out, questions, **options)
        spacy = _spacy()
        from spacy.tokens import DocBin
        from spacy.util import filter_spans

        self._DocBin, self._filter_spans, self._spacy = DocBin, filter_spans, spacy
        # One pipeline per split, replaced when its string store has grown large: every token
        # string a doc adds stays in the vocabulary, so one pipeline for a whole export grows with
        # the project. Measured on 200k items (benchmarks/media_formats.py): one pipeline and 5,000-doc
        # shards peaked at 429 MB; per-split resets and 1,000-doc shards at 294 MB.
        self.nlps = {split: spacy.blank("xx") for split in SPLITS}
        self.archive = ZipArchive(out)
        self.bins = {split: DocBin() for split in SPLITS}
        self.ids: dict[str, list[bytes]] = {split: [] for split in SPLITS}
        self.shards = dict.fromkeys(SPLITS, 0)

    def write_item(self, item: LabeledItem) -> None:
        text = item.data.get(self.question.source)
        if not isinstance(text, str):
            return
        doc = self.nlps[item.split].make_doc(text)
        spans = []
        for span in item.value:
            piece = doc.char_span(span["start"], span["end"], label=span["label"], alignment_mode="expand")
            if piece is not None:
                spans.append(piece)
        entities = self._filter_spans(spans)
        doc.ents = entities
        if len(entities) < len(spans):
            doc.spans["sc"] = spans
        docbin = self.bins[item.split]
        docbin.add(doc)
        self.ids[item.split].append(orjson.dumps({"external_id": item.external_id, "confidence": item.confidence}))
        if len(docbin) >= SHARD_DOCS:
            self._flush(item.split)

    def _flush(self, split: str) -> None:
        docbin = self.bins[split]
        if len(docbin):
            shard = f"{split}/{split}-{self.shards[split]:04d}"
            self.archive.put(f"{shard}.spacy", docbin.to_bytes())
            self.archive.put(f"{shard}.jsonl", b"\n".join(self.ids[split]) + b"\n")
            self.shards[split] += 1
            self.bins[split] = self._DocBin()
            self.ids[split] = []
            if len(self.nlps[split].vocab.strings) > VOCAB_RESET_STRINGS:
                self.nlps[split] = self._spacy.blank("xx")

    def finish(self) -> None:
        for split in SPLITS:
            self._flush(split)
        self.archive.close()
