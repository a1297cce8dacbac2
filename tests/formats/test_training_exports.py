"""Training formats, each read back by the library that consumes it: COCO by pycocotools,
YOLO's data.yaml by PyYAML, VOC by an XML parser, CoNLL and DocBin by spaCy, the Hugging Face
export by ``datasets``. Labels come from real answers through the API, on both databases."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from xml.etree import ElementTree as ET

import pytest
import yaml
from PIL import Image

from goldlabel.cli import transfer as cli_transfer
from goldlabel.domain.splits import split_of
from goldlabel.formats import EXPORT_FORMATS, IMPORT_FORMATS
from goldlabel.services.exports import export_project

BOX_SCHEMA = {"questions": [{"name": "objects", "kind": "boxes", "labels": ["cat", "dog"], "source": "image"}]}
SPAN_SCHEMA = {"questions": [{"name": "entities", "kind": "spans", "labels": ["PRODUCT", "BRAND"], "source": "text"}]}
MIXED_SCHEMA = {"questions": [
    {"name": "sentiment", "kind": "choice", "labels": ["pos", "neg", "neu"]},
    {"name": "topics", "kind": "multi_choice", "labels": ["price", "quality", "shipping"]},
    {"name": "stars", "kind": "rating", "min": 1, "max": 5},
]}


def png_data_uri(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def label_everything(factory, project, answers: dict[str, dict]) -> None:
    """One annotator answers every item (overlap 1): item data carries its ``key``."""
    annotator = factory.make_user()
    from goldlabel.services import projects as project_service

    project_service.set_member(factory.ctx, project["manager"], project["id"], annotator.id, "annotator")
    api = factory.api_as(annotator)
    for _ in answers:
        lease = api.post(f"/api/v1/projects/{project['id']}/next")
        assert lease.status_code == 200, lease.text
        key = lease.json()["item"]["data"]["key"]
        res = api.post(f"/api/v1/projects/{project['id']}/answers",
                       json={"lease_token": lease.json()["token"], "value": answers[key]})
        assert res.status_code == 201, res.text


def export_zip(factory, project, fmt, **kw) -> zipfile.ZipFile:
    out = io.BytesIO()
    export_project(factory.ctx, None, project["id"], fmt, out, **kw)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


@pytest.fixture
def boxes_project(factory):
    project = factory.make_project(schema=BOX_SCHEMA, overlap_min=1, overlap_max=1)
    rows, answers = [], {}
    for i in range(12):
        rows.append({"external_id": f"img/{i}.jpg", "data": {"key": f"k{i}", "image": f"https://example.org/{i}.jpg",
                                                            "width": 640, "height": 480}})
        answers[f"k{i}"] = {"objects": [{"x": 0.1, "y": 0.2, "w": 0.25, "h": 0.5, "label": "cat"}] * (i % 3 == 0)
                            + [{"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.25, "label": "dog"}]}
    rows.append({"external_id": "inline", "data": {"key": "inline", "image": png_data_uri(32, 16)}})
    answers["inline"] = {"objects": [{"x": 0.0, "y": 0.0, "w": 0.5, "h": 1.0, "label": "dog"}]}
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    label_everything(factory, project, answers)
    return project, answers


def test_coco_export_loads_in_pycocotools(factory, boxes_project, tmp_path):
    from pycocotools.coco import COCO

    project, answers = boxes_project
    archive = export_zip(factory, project, "coco")
    names = archive.namelist()
    files = [n for n in names if n.startswith("annotations/instances_")]
    assert files and set(files) <= {f"annotations/instances_{s}.json" for s in ("train", "validation", "test")}
    images = annotations = 0
    for name in files:
        path = tmp_path / name.rsplit("/", 1)[1]
        path.write_bytes(archive.read(name))
        coco = COCO(str(path))
        images += len(coco.getImgIds())
        annotations += len(coco.getAnnIds())
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
        for image in coco.loadImgs(coco.getImgIds()):
            ext = image["goldlabel"]["external_id"]
            assert name.endswith(f"instances_{split_of(ext)}.json")
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            expected = answers["inline" if ext == "inline" else f"k{ext.split('/')[1].split('.')[0]}"]["objects"]
            assert len(anns) == len(expected)
            for ann, box in zip(sorted(anns, key=lambda a: a["bbox"][0]), sorted(expected, key=lambda b: b["x"]),
                                strict=True):
                assert ann["bbox"] == pytest.approx([box["x"] * image["width"], box["y"] * image["height"],
                                                     box["w"] * image["width"], box["h"] * image["height"]])
            if ext == "inline":  # the data: URI image was read for its size and written into the zip
                assert (image["width"], image["height"]) == (32, 16)
                assert f"images/{split_of(ext)}/{image['file_name']}" in names
            else:
                assert image["coco_url"].startswith("https://example.org/")
    assert images == len(answers)
    assert annotations == sum(len(a["objects"]) for a in answers.values())


def test_yolo_export_has_data_yaml_and_normalized_labels(factory, boxes_project):
    project, answers = boxes_project
    archive = export_zip(factory, project, "yolo")
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["names"] == {0: "cat", 1: "dog"}
    assert {data["train"], data["val"], data["test"]} == {"images/train", "images/validation", "images/test"}
    labels = [n for n in archive.namelist() if n.startswith("labels/")]
    assert len(labels) == len(answers)
    lines = archive.read(f"labels/{split_of('img/0.jpg')}/img_0.jpg_1.txt").decode().splitlines()
    # cat at x 0.1 w 0.25 -> centre 0.225; y 0.2 h 0.5 -> centre 0.45
    assert sorted(lines) == ["0 0.225000 0.450000 0.250000 0.500000", "1 0.750000 0.625000 0.500000 0.250000"]
    sources = archive.read("images.csv").decode().splitlines()
    assert sources[0] == "split,stem,external_id,source" and len(sources) == 1 + 12  # the inline image is a file
    assert f"images/{split_of('inline')}/inline.png" in archive.namelist()


def test_voc_export_parses(factory, boxes_project):
    project, answers = boxes_project
    archive = export_zip(factory, project, "voc")
    xmls = [n for n in archive.namelist() if n.startswith("Annotations/")]
    assert len(xmls) == len(answers)
    root = ET.fromstring(archive.read("Annotations/inline.xml"))
    assert root.findtext("size/width") == "32" and root.findtext("size/height") == "16"
    (obj,) = root.findall("object")
    assert obj.findtext("name") == "dog"
    assert [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == ["1", "1", "16", "16"]
    listed = sum(len(archive.read(f"ImageSets/Main/{s}.txt").split()) for s in ("train", "validation", "test"))
    assert listed == len(answers)


def test_voc_xml_is_what_elementtree_writes_for_markup_in_labels_and_sources(factory):
    # The XML is written as text (formats/voc.py): it must be ElementTree's own serialisation,
    # escapes included, which re-serialising the parsed file reproduces byte for byte.
    labels = ["a&b", "<c>", 'ünï "q" \'r\'']
    schema = {"questions": [{"name": "objects", "kind": "boxes", "labels": labels, "source": "image"}]}
    project = factory.make_project(schema=schema, overlap_min=1, overlap_max=1)
    rows = [{"external_id": f"m{i}", "data": {"key": f"m{i}", "width": 640, "height": 480,
                                              "image": f"https://example.org/{i}.png?x=1&y=>{i}"}} for i in range(3)]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    label_everything(factory, project, {f"m{i}": {"objects": [
        {"x": 0.1 * k, "y": 0.2, "w": 0.3, "h": 0.25, "label": labels[k]} for k in range(i + 1)]} for i in range(3)})
    archive = export_zip(factory, project, "voc")
    for i in range(3):
        raw = archive.read(f"Annotations/m{i}.xml")
        assert ET.tostring(ET.fromstring(raw), encoding="utf-8", xml_declaration=True) == raw
        root = ET.fromstring(raw)
        assert [o.findtext("name") for o in root.findall("object")] == labels[: i + 1]
        assert root.findtext("source/url") == f"https://example.org/{i}.png?x=1&y=>{i}"


@pytest.fixture
def spans_project(factory):
    project = factory.make_project(schema=SPAN_SCHEMA, overlap_min=1, overlap_max=1)
    texts = {
        "a": ("Anker PowerCore 10000, a slim charger.", [(0, 5, "BRAND"), (6, 21, "PRODUCT")]),
        "b": ("I like the Kindle Paperwhite from Amazon!", [(11, 28, "PRODUCT"), (34, 40, "BRAND")]),
        "c": ("Nothing to see here.", []),
    }
    rows = [{"external_id": k, "data": {"key": k, "text": t}} for k, (t, _) in texts.items()]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    label_everything(factory, project, {k: {"entities": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]}
                                        for k, (_, spans) in texts.items()})
    return project, texts


def test_conll_export_reads_back_in_spacy(factory, spans_project):
    from spacy.training.converters import conll_ner_to_docs

    project, _ = spans_project
    archive = export_zip(factory, project, "conll")
    entities = set()
    for split in ("train", "validation", "test"):
        body = archive.read(f"{split}.txt").decode()
        assert body.startswith("-DOCSTART- -X- -X- O\n")
        if body.strip() == "-DOCSTART- -X- -X- O":
            continue
        for doc in conll_ner_to_docs(body, n_sents=1, no_print=True):
            entities |= {(ent.text, ent.label_) for ent in doc.ents}
    assert entities == {("Anker", "BRAND"), ("PowerCore 10000", "PRODUCT"), ("Kindle Paperwhite", "PRODUCT"),
                        ("Amazon", "BRAND")}


def test_spacy_docbin_export_reads_back(factory, spans_project):
    import spacy
    from spacy.tokens import DocBin

    project, _ = spans_project
    archive = export_zip(factory, project, "spacy")
    nlp = spacy.blank("xx")
    by_id = {}
    for name in archive.namelist():
        if not name.endswith(".spacy"):
            continue
        docs = list(DocBin().from_bytes(archive.read(name)).get_docs(nlp.vocab))
        ids = [json.loads(line) for line in archive.read(name[: -len(".spacy")] + ".jsonl").splitlines()]
        assert len(ids) == len(docs)
        by_id.update({meta["external_id"]: (doc, meta["confidence"]) for doc, meta in zip(docs, ids, strict=True)})
    assert set(by_id) == {"a", "b", "c"}
    doc_a, confidence_a = by_id["a"]
    assert [(e.text, e.label_) for e in doc_a.ents] == [("Anker", "BRAND"), ("PowerCore 10000", "PRODUCT")]
    assert [(e.text, e.label_) for e in by_id["b"][0].ents] == [("Kindle Paperwhite", "PRODUCT"), ("Amazon", "BRAND")]
    assert by_id["c"][0].ents == () and 0 < confidence_a <= 1
    assert "sc" not in doc_a.spans


def test_hf_export_loads_with_classlabel_features(factory, tmp_path):
    import datasets

    project = factory.make_project(schema=MIXED_SCHEMA, overlap_min=1, overlap_max=1,
                                   settings={"split_ratios": (0.5, 0.25, 0.25)})
    answers = {f"k{i}": {"sentiment": ["pos", "neg", "neu"][i % 3], "topics": ["price", "shipping"][: i % 3],
                         "stars": 1 + i % 5} for i in range(24)}
    rows = [{"external_id": f"r{i}", "data": {"key": f"k{i}", "text": f"review {i}"}} for i in range(24)]
    res = factory.api_as(project["manager"]).post(f"/api/v1/projects/{project['id']}/items", json=rows)
    assert res.status_code == 201, res.text
    label_everything(factory, project, answers)
    archive = export_zip(factory, project, "hf")
    archive.extractall(tmp_path)
    files = {s: str(tmp_path / "data" / f"{s}-00000.parquet") for s in ("train", "validation", "test")
             if (tmp_path / "data" / f"{s}-00000.parquet").exists()}
    assert set(files) == {split_of(f"r{i}", (0.5, 0.25, 0.25)) for i in range(24)}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    split = next(iter(loaded))
    features = loaded[split].features
    assert isinstance(features["sentiment"], datasets.ClassLabel)
    assert features["sentiment"].names == ["pos", "neg", "neu"]
    assert features["topics"].feature.names == ["price", "quality", "shipping"]
    seen = 0
    for name, ds in loaded.items():
        for row in ds:
            assert name == split_of(row["external_id"], (0.5, 0.25, 0.25))
            expected = answers[json.loads(row["data"])["key"]]
            assert features["sentiment"].int2str(row["sentiment"]) == expected["sentiment"]
            assert [features["topics"].feature.int2str(t) for t in row["topics"]] == expected["topics"]
            assert row["stars"] == expected["stars"] and 0 < row["sentiment_confidence"] <= 1
            seen += 1
    assert seen == 24
    # The dataset card's configs make the folder loadable by name alone.
    assert "configs:" in (tmp_path / "README.md").read_text()


def test_training_format_that_cannot_hold_the_schema_is_refused_before_streaming(factory):
    project = factory.make_project(overlap_min=1)  # one choice question
    api = factory.api_as(project["manager"])
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "coco"})
    assert res.status_code == 422, res.text
    assert res.json()["code"] == "format_not_applicable"
    assert "boxes" in res.json()["detail"]
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "hf", "question": "nope"})
    assert res.status_code == 422 and res.json()["code"] == "unknown_question"


def test_min_confidence_and_filename_over_the_api(factory, spans_project):
    project, _ = spans_project
    api = factory.api_as(project["manager"])
    res = api.get(f"/api/v1/projects/{project['id']}/export", params={"format": "conll", "min_confidence": 1.0})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/zip"
    assert 'filename="project-' in res.headers["content-disposition"]
    assert res.headers["content-disposition"].endswith('-conll.zip"')
    archive = zipfile.ZipFile(io.BytesIO(res.content))
    # One answer at the default skill is below certainty: nothing passes a floor of 1.0.
    assert all(archive.read(f"{s}.txt").decode().strip() == "-DOCSTART- -X- -X- O"
               for s in ("train", "validation", "test"))


def test_cli_format_lists_match_the_registry():
    assert tuple(cli_transfer.FORMATS) == IMPORT_FORMATS
    assert tuple(cli_transfer.EXPORT_FORMATS) == EXPORT_FORMATS


def test_overlapping_spans_in_conll_and_spacy():
    """IOB cannot nest: CoNLL keeps the first (then longer) span; spaCy keeps one in ``ents`` and
    both in the ``sc`` span group."""
    import spacy
    from spacy.tokens import DocBin

    from goldlabel.domain.label_schema import LabelSchema
    from goldlabel.formats import conll, spacy_format

    schema = LabelSchema.parse(SPAN_SCHEMA)
    spans = [{"start": 0, "end": 6, "label": "BRAND"}, {"start": 0, "end": 13, "label": "PRODUCT"}]
    record = (1, "d", json.dumps({"text": "Amazon Kindle, again."}), None, 0, "final", False,
              (("entities", json.dumps(spans), 0.9),), (), (), None)
    assert conll.iob_tags("Amazon Kindle, again.", spans)[:3] == [
        ("Amazon", "B-PRODUCT"), ("Kindle", "I-PRODUCT"), (",", "O")]
    out = io.BytesIO()
    writer = spacy_format.Writer(out, ["entities"], schema=schema)
    writer.write_batch([record])
    writer.close()
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    [name] = [n for n in archive.namelist() if n.endswith(".spacy")]
    [doc] = DocBin().from_bytes(archive.read(name)).get_docs(spacy.blank("xx").vocab)
    assert [e.text for e in doc.ents] == ["Amazon Kindle"]
    assert sorted((s.text, s.label_) for s in doc.spans["sc"]) == [("Amazon", "BRAND"), ("Amazon Kindle", "PRODUCT")]


def test_a_gold_items_gold_answer_goes_before_its_crowd_consensus():
    """A gold item has the crowd's consensus rows (services/consensus.py gold_decision); a
    training export with gold takes the gold answer, without gold the crowd's label."""
    from goldlabel.domain.label_schema import LabelSchema
    from goldlabel.formats.labeled import LabeledWriter

    class Collect(LabeledWriter):
        NAME = "collect"
        KINDS = ("spans",)

        def __init__(self, *args, **kw) -> None:
            super().__init__(*args, **kw)
            self.items = []

        def write_item(self, item) -> None:
            self.items.append((item.value, item.confidence))

        def finish(self) -> None:
            pass

    schema = LabelSchema.parse(SPAN_SCHEMA)
    crowd = [{"start": 0, "end": 6, "label": "BRAND"}]
    gold = [{"start": 0, "end": 13, "label": "PRODUCT"}]
    record = (1, "g", json.dumps({"text": "Amazon Kindle, again."}), None, 0, "open", True,
              (("entities", json.dumps(crowd), 0.7),), (), (), json.dumps({"entities": gold}))
    for include_gold, expected in ((True, (gold, 1.0)), (False, (crowd, 0.7))):
        writer = Collect(io.BytesIO(), ["entities"], schema=schema, include_gold=include_gold)
        writer.write_batch([record])
        assert writer.items == [expected]


def test_coco_boxes_written_as_text_equal_the_numbers(tmp_path):
    """COCO's boxes are formatted straight to JSON (formats/coco.py): every number must read back
    as the float computed, for awkward values too (tiny, repeating, large, integers)."""
    from goldlabel.domain.label_schema import LabelSchema
    from goldlabel.formats.coco import Writer
    from goldlabel.formats.labeled import LabeledItem

    schema = LabelSchema.parse(BOX_SCHEMA)
    out = io.BytesIO()
    writer = Writer(out, ["objects"], schema=schema)
    boxes = [{"x": 1e-7, "y": 1 / 3, "w": 0.1 + 0.2, "h": 1, "label": "cat"},
             {"x": 0, "y": 0.999999999999, "w": 2.5e-12, "h": 0.5, "label": "dog"}]
    writer.write_batch([])
    data = {"image": "https://example.org/b.jpg", "width": 4000, "height": 3}
    writer.write_item(LabeledItem(7, "a/b.jpg", data, "train", boxes, 0.9, "final"))
    writer.close()
    doc = json.loads(zipfile.ZipFile(io.BytesIO(out.getvalue())).read("annotations/instances_train.json"))
    got = [(a["id"], a["image_id"], a["category_id"], a["bbox"], a["area"]) for a in doc["annotations"]]
    want = [(1 + k, 7, 1 + ["cat", "dog"].index(b["label"]),
             [b["x"] * 4000, b["y"] * 3, b["w"] * 4000, b["h"] * 3], (b["w"] * 4000) * (b["h"] * 3))
            for k, b in enumerate(boxes)]
    assert got == want
    assert all(type(v) is float or type(v) is int for _, _, _, bbox, area in got for v in [*bbox, area])
