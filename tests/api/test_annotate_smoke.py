"""The annotate loop end to end through the API, on both backends."""


def test_lease_submit_until_final(factory):
    ann1, ann2 = factory.make_user(), factory.make_user()
    # Two agreeing annotators of default accuracy 0.7 give P = 0.49 / (0.49 + 0.09) = 0.845.
    project = factory.make_project(
        annotators=[ann1, ann2], overlap_min=2, overlap_max=3, settings={"target_confidence": 0.8}
    )
    factory.add_items(project, 3)
    pid = project["id"]
    for ann in (ann1, ann2):
        api = factory.api_as(ann)
        for _ in range(3):
            lease = api.post(f"/api/v1/projects/{pid}/next")
            assert lease.status_code == 200, lease.text
            res = api.post(
                f"/api/v1/projects/{pid}/answers",
                json={"lease_token": lease.json()["token"], "value": {"sentiment": "positive"}},
            )
            assert res.status_code == 201, res.text
        assert api.post(f"/api/v1/projects/{pid}/next").status_code == 204
    manager = factory.api_as(project["manager"])
    items = manager.get(f"/api/v1/projects/{pid}/items").json()["items"]
    assert [i["status"] for i in items] == ["final"] * 3
    detail = manager.get(f"/api/v1/projects/{pid}/items/{items[0]['id']}").json()
    assert detail["consensus"][0]["value"] == "positive"
    assert len(detail["answers"]) == 2
