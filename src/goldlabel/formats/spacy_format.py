"""spaCy ``DocBin`` files for a ``spans`` question: ``<split>/<split>-NNNN.spacy`` in a zip.

Each labeled item becomes a ``Doc`` tokenized by a blank multi-language pipeline, with every
consensus span in ``doc.spans["sc"]`` (overlaps kept, for the span categorizer) and the
non-overlapping ones in ``doc.ents`` (for the entity recognizer); spans are widened to token
boundaries. ``doc.user_data`` carries the item's external_id and confidence. A DocBin keeps its
documents in memory, so files are sharded every ``SHARD_DOCS`` documents. ``spacy train`` takes
the folder of a split as its corpus path. Needs spaCy (``pip install 'goldlabel[formats]'``).
"""

from __future__ import annotations

from goldlabel.domain.errors import GoldlabelError
from goldlabel.domain.splits import SPLITS
from goldlabel.formats.archive import ZipArchive
from goldlabel.formats.labeled import LabeledItem, LabeledWriter

NAME = "spacy"
EXTENSIONS: tuple[str, ...] = ()
MEDIA_TYPE = "application/zip"
FILE_EXTENSION = "zip"
IMPORTS = False
SHARD_DOCS = 5000


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

        self._DocBin, self._filter_spans = DocBin, filter_spans
        self.nlp = spacy.blank("xx")
        self.archive = ZipArchive(out)
        self.bins = {split: DocBin(store_user_data=True) for split in SPLITS}
        self.shards = dict.fromkeys(SPLITS, 0)

    def write_item(self, item: LabeledItem) -> None:
        text = item.data.get(self.question.source)
        if not isinstance(text, str):
            return
        doc = self.nlp.make_doc(text)
        spans = []
        for span in item.value:
            piece = doc.char_span(span["start"], span["end"], label=span["label"], alignment_mode="expand")
            if piece is not None:
                spans.append(piece)
        doc.spans["sc"] = spans
        doc.ents = self._filter_spans(spans)
        doc.user_data["external_id"] = item.external_id
        doc.user_data["confidence"] = item.confidence
        docbin = self.bins[item.split]
        docbin.add(doc)
        if len(docbin) >= SHARD_DOCS:
            self._flush(item.split)

    def _flush(self, split: str) -> None:
        docbin = self.bins[split]
        if len(docbin):
            self.archive.put(f"{split}/{split}-{self.shards[split]:04d}.spacy", docbin.to_bytes())
            self.shards[split] += 1
            self.bins[split] = self._DocBin(store_user_data=True)

    def finish(self) -> None:
        for split in SPLITS:
            self._flush(split)
        self.archive.close()
