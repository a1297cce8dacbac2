"""The SDK reads a PDF item's pages as the PNGs the workspace shows."""

from __future__ import annotations

import io

from PIL import Image

CLASSIFY = {"questions": [{"name": "kind", "kind": "choice", "labels": ["invoice", "letter"]}]}


def test_download_media_gives_a_pdf_page(connect, make_user, tmp_path):
    gl = connect(make_user("manager"))
    project = gl.create_project("mail", CLASSIFY)
    sheets = [Image.new("RGB", (300, 400), (40 * i, 0, 0)) for i in (1, 2)]
    scan = tmp_path / "scan.pdf"
    sheets[0].save(scan, format="PDF", save_all=True, append_images=sheets[1:])
    assert gl.upload_media(project.id, [scan]).created == 1
    item = next(iter(gl.list_items(project.id)))
    assert item.data["pages"] == 2
    with Image.open(io.BytesIO(gl.download_media(item.data["pdf"], page=2))) as page:
        assert page.format == "PNG" and page.width == 1400
        red, green, blue = page.convert("RGB").getpixel((700, 900))
        assert abs(red - 80) <= 3 and green <= 3 and blue <= 3  # page 2's colour (JPEG inside the PDF)
    assert gl.download_media(item.data["pdf"]) == scan.read_bytes()
