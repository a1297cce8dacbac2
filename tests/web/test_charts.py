"""Server-side SVG charts: well-formed SVG, data text escaped, no inline styles (CSP)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from goldlabel.web import charts

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '</text><script>alert(1)</script><text x="1" y="2" onload="x()">&'


def parse(markup) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == f"{SVG}svg"
    for el in root.iter():
        assert el.tag.removeprefix(SVG) not in ("script", "foreignObject", "style")
        assert "style" not in el.attrib
        assert not any(k.startswith("on") for k in el.attrib)
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def test_bar_chart_is_valid_and_escapes_labels():
    root = parse(charts.bar_chart([3, 0, 12], ["a", EVIL, "c"], title=f"t {EVIL}"))
    assert len(root.findall(f"{SVG}rect")) == 3
    assert any(EVIL in t for t in texts(root))  # shown as text, never as markup
    assert root.find(f"{SVG}title").text == f"t {EVIL}"


def test_line_chart_with_series_and_empty_values():
    root = parse(charts.line_chart([(EVIL, [0, 1, 5]), ("answers", [0, 0, 0])], ["d1", "d2", "d3"], title="p"))
    assert len(root.findall(f"{SVG}polyline")) == 2
    assert EVIL in texts(root)
    parse(charts.line_chart([], [], title="empty"))


def test_donut_and_histogram():
    root = parse(charts.donut([("final", 3, "#0f0"), (EVIL, 1, "#f00"), ("none", 0, "#00f")], title="s"))
    rings = [c for c in root.findall(f"{SVG}circle") if c.get("stroke-dasharray")]
    assert len(rings) == 2
    assert "4" in texts(root)
    parse(charts.donut([("final", 0, "#0f0")], title="no items"))
    root = parse(charts.histogram([1, 2, 3, 0, 0, 0, 0, 0, 0, 9], title="h"))
    assert len(root.findall(f"{SVG}rect")) == 10


def test_confusion_matrix_escapes_labels_and_shades_rows():
    labels = ["cat", EVIL]
    root = parse(charts.confusion_matrix(labels, [[8, 2], [0, 5]], title="c", counts=True))
    cells = root.findall(f"{SVG}rect")
    assert len(cells) == 4
    assert cells[0].get("fill") != cells[1].get("fill")
    parse(charts.confusion_matrix(labels, [[0.9, 0.1], [0.2, 0.8]], title="model"))


@pytest.mark.parametrize(("value", "top", "step"), [(0, 1, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (34, 40, 10),
                                                     (50, 60, 20), (230, 300, 100), (1000, 1000, 250 * 2)])
def test_nice_scale_has_whole_steps(value, top, step):
    assert charts.nice_scale(value) == (top, step)
    assert top >= value and top / step <= 4


def test_fmt_count():
    assert [charts.fmt_count(v) for v in (5, 1500, 25_000, 2_000_000)] == ["5", "1.5k", "25k", "2M"]
