"""The HTML report: every section renders from a real store, and its plots are real PNGs."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from tests.conftest import run_cli
from tracekit.collect.importers import ImportConfig, run_import
from tracekit.report.html import SECTIONS, ReportConfig, run_report


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"])
        if tag == "img":
            self.images.append(a["src"])


@pytest.mark.realdata
def test_report_renders_every_section_with_decodable_plots(store, shared_data, tmp_path):
    run_import(
        store,
        ImportConfig(
            path=str(shared_data / "gsm8k" / "example_model_solutions.jsonl"),
            preset="gsm8k-solutions",
        ),
    )
    store.insert_rows(
        "flags",
        [
            {
                "flag_id": "f1",
                "prompt_id": "p",
                "trace_id": None,
                "flag": "decontam:gsm8k",
                "detail": "x",
            }
        ],
    )
    result = run_report(store, ReportConfig(output=str(tmp_path / "r.html")))
    doc = (tmp_path / "r.html").read_text()
    parser = _Sections()
    parser.feed(doc)
    assert parser.sections == SECTIONS
    assert "section failed" not in doc
    # the teacher table carries the real accuracies of the four GPT-3 solution columns
    acc = store.dicts("SELECT teacher, round(accuracy, 4) AS a FROM v_teachers")
    for row in acc:
        assert row["teacher"] in doc and f"{row['a']:.4g}" in doc
    assert len(parser.images) >= 2 and result.counts["images"] == len(parser.images)
    for src in parser.images:
        data = base64.b64decode(src.split(",", 1)[1])
        img = Image.open(io.BytesIO(data))
        img.verify()
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100
    # 731 problems have a positive and a negative (README of the data)
    assert re.search(r"\b731 have both a positive and a negative", doc)


def test_report_command_on_an_empty_store(tmp_path):
    db = tmp_path / "t.duckdb"
    code, out, err = run_cli("report", "--output", str(tmp_path / "r.html"), store=db)
    assert code == 0, err
    doc = (tmp_path / "r.html").read_text()
    assert doc.count("<section") == len(SECTIONS) and "no evaluations" in doc
