"""Label Studio conversion without a database: the labeling config becomes a label schema that
parses, and tasks convert to rows that validate against it."""

from __future__ import annotations

import pytest

from goldlabel.domain.label_schema import LabelSchema
from goldlabel.formats import labelstudio

CONFIG = """
<View>
  <Image name="img" value="$photo"/>
  <RectangleLabels name="objects" toName="img">
    <Label value="Car"/><Label value="Pedestrian" alias="person"/>
  </RectangleLabels>
  <PolygonLabels name="outline" toName="img"><Label value="Road"/></PolygonLabels>
  <KeyPointLabels name="joints" toName="img"><Label value="knee"/><Label value="ankle"/></KeyPointLabels>
  <Brush name="mask" toName="img"/>
  <Text name="caption" value="$text"/>
  <Labels name="entities" toName="caption"><Label value="PER"/><Label value="ORG"/></Labels>
  <Choices name="tags" toName="caption" choice="multiple" required="true">
    <Choice value="sunny"/><Choice value="night"/>
  </Choices>
  <Choices name="verdict" toName="caption"><Choice value="ok"/><Choice value="bad"/></Choices>
  <Rating name="quality" toName="img" maxRating="10"/>
  <TextArea name="comment" toName="img"/>
</View>
"""


def test_config_becomes_a_schema_with_notes_for_what_is_left_out():
    schema, notes = labelstudio.schema_from_config(CONFIG)
    assert schema == {"questions": [
        {"name": "objects", "kind": "boxes", "required": False, "labels": ["Car", "person"], "source": "photo"},
        {"name": "outline", "kind": "polygons", "required": False, "labels": ["Road"], "source": "photo"},
        {"name": "joints", "kind": "keypoints", "required": False, "labels": ["joints"],
         "skeletons": {"joints": {"points": ["knee", "ankle"]}}, "source": "photo"},
        {"name": "entities", "kind": "spans", "required": False, "labels": ["PER", "ORG"], "source": "text"},
        {"name": "tags", "kind": "multi_choice", "required": True, "labels": ["sunny", "night"]},
        {"name": "verdict", "kind": "choice", "required": False, "labels": ["ok", "bad"]},
        {"name": "quality", "kind": "rating", "required": False, "min": 1, "max": 10},
        {"name": "comment", "kind": "text", "required": False},
    ]}
    assert notes == ["Brush 'mask' left out: goldlabel has no question kind for it"]
    LabelSchema.parse(schema)


@pytest.mark.parametrize("xml", ["<View><Image name='i' value='$i'/></View>", "<View", "<!DOCTYPE x><View/>"])
def test_configs_that_give_no_schema_are_refused(xml):
    with pytest.raises(ValueError):
        labelstudio.schema_from_config(xml)


def test_a_task_converts_to_a_row_the_schema_accepts():
    schema = LabelSchema.parse(labelstudio.schema_from_config(CONFIG)[0])
    task = {"id": 41, "data": {"photo": "https://example.com/p.jpg", "text": "Ada at ACME"},
            "annotations": [{"completed_by": {"id": 7, "email": "ann@example.com"}, "result": [
                {"from_name": "tags", "type": "choices", "value": {"choices": ["night", "sunny"]}},
                {"from_name": "entities", "type": "labels", "value": {"start": 7, "end": 11, "labels": ["ORG"]}},
                {"from_name": "objects", "type": "rectanglelabels",
                 "value": {"x": 0, "y": 0, "width": 100.0000001, "height": 50, "rectanglelabels": ["person"]}},
                {"from_name": "quality", "type": "rating", "value": {"rating": 8}},
                {"from_name": "outline", "type": "polygonlabels",
                 "value": {"points": [[10, 10], [50, 10], [50, 60]], "closed": True, "polygonlabels": ["Road"]}},
                {"from_name": "joints", "type": "keypointlabels", "value": {"x": 25, "y": 75, "width": 0.5,
                                                                           "keypointlabels": ["knee"]}},
                {"from_name": "joints", "type": "keypointlabels", "value": {"x": 30, "y": 90,
                                                                           "keypointlabels": ["ankle"]}},
            ]}]}
    row, errors = labelstudio.convert_task(task, 3, schema)
    assert errors == []
    [answer] = row["answers"]
    assert answer["annotator"] == "ls-7"  # the id, never the e-mail
    value = schema.validate_answer(answer["value"], row["data"], partial=True)
    assert value == {"objects": [{"x": 0.0, "y": 0.0, "w": 1.0, "h": 0.5, "label": "person"}],
                     "outline": [{"points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]], "label": "Road"}],
                     "joints": [{"label": "joints", "points": {"knee": {"x": 0.25, "y": 0.75, "v": 2},
                                                               "ankle": {"x": 0.3, "y": 0.9, "v": 2}}}],
                     "entities": [{"start": 7, "end": 11, "label": "ORG"}], "tags": ["sunny", "night"],
                     "quality": 8}
    row, errors = labelstudio.convert_task(task, 3, schema, labelstudio.Options(id_field="photo"))
    assert row["external_id"] == "https://example.com/p.jpg"


def test_choice_question_with_several_choices_and_a_bad_completed_by():
    schema = LabelSchema.parse(labelstudio.schema_from_config(CONFIG)[0])
    task = {"id": 1, "data": {}, "annotations": [
        {"completed_by": "someone", "result": [{"from_name": "verdict", "type": "choices",
                                                 "value": {"choices": ["ok", "bad"]}}]},
        {"completed_by": None, "result": [{"from_name": "verdict", "type": "choices", "value": {"choices": ["ok"]}}]},
    ]}
    row, errors = labelstudio.convert_task(task, 9, schema)
    assert row is None
    assert [(e.code, e.line, e.loc) for e in errors] == [
        ("ls_multiple_choices", 9, ("annotations", 0, "result", 0, "value", "choices")),
        ("ls_bad_annotation", 9, ("annotations", 1, "completed_by")),
    ]
