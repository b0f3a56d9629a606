"""Sentence segmentation: exact offsets, LaTeX and code kept whole, on real long traces."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.score.segment import protected_spans, segment

# independent of the segmenter's own scanner: well-formed inline and display math, the way a
# reader would spot it (opening `$` followed by a non-space, closing `$` preceded by one)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=\S)\$(?!\$)")
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]", re.DOTALL)


def assert_tiles(text: str, segs) -> None:
    assert "".join(s.text for s in segs) == text
    pos = 0
    for i, s in enumerate(segs):
        assert s.idx == i
        assert s.start == pos and s.end > s.start
        assert text[s.start : s.end] == s.text
        assert s.sentence  # every segment holds a non-space character
        pos = s.end
    assert pos == len(text)


def test_latex_decimals_abbreviations_and_code_stay_whole():
    text = (
        "We need $x = 3.5$. So $$y = 2. z = 4.$$ holds, e.g. when \\[ a. b \\] is true. "
        "Is it? No. Fine!\n1. First step.\n2. Second step.\n\n"
        "```python\nx = 1. \ny = 2\n```\nDone. The pen costs $5 and the book $10. Then stop."
    )
    got = [s.sentence for s in segment(text)]
    assert got == [
        "We need $x = 3.5$.",
        "So $$y = 2. z = 4.$$ holds, e.g. when \\[ a. b \\] is true.",
        "Is it?",
        "No.",
        "Fine!",
        "1. First step.",
        "2. Second step.",
        "```python\nx = 1. \ny = 2\n```",
        "Done.",
        "The pen costs $5 and the book $10.",
        "Then stop.",
    ]
    paragraphs = [s.paragraph for s in segment(text)]
    assert paragraphs[6] == 0 and paragraphs[7] == 1  # the blank line starts a paragraph


def test_unclosed_math_and_empty_text():
    assert segment("") == [] and segment("  \n ") == []
    text = "Price is $3. Next sentence.\n\nAnother paragraph."
    assert [s.sentence for s in segment(text)] == [
        "Price is $3.",
        "Next sentence.",
        "Another paragraph.",
    ]


def _longcot(shared_data, n: int) -> list[str]:
    texts = []
    for path in sorted((shared_data / "longcot").glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["code"][0])
                if len(texts) >= n:
                    return texts
    return texts


@pytest.mark.realdata
def test_real_long_traces_offsets_and_no_boundary_inside_math(shared_data):
    texts = _longcot(shared_data, 40)
    assert len(texts) == 40
    checked_math = 0
    for text in texts:
        segs = segment(text)
        assert len(segs) > 10
        assert_tiles(text, segs)
        cuts = [s.start for s in segs[1:]]
        spans = [m.span() for m in INLINE_MATH.finditer(text)]
        spans += [m.span() for m in DISPLAY_MATH.finditer(text)]
        for a, b in spans:
            inside = [c for c in cuts if a < c < b]
            assert not inside, f"boundary inside math {text[a:b][:80]!r}"
        checked_math += len(spans)
    assert checked_math > 500  # the traces really are full of LaTeX


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list("ab .!?$\\[]()`\n\t1") + ["$$", "\\[", "\\]", "```", " e.g. ", "3.5", "\n\n"]
        ),
        max_size=60,
    ).map("".join)
)
def test_segments_join_back_to_the_text(text):
    segs = segment(text)
    if not text.strip():
        assert segs == []
        return
    assert_tiles(text, segs)
    for a, b in protected_spans(text):
        assert not [s.start for s in segs[1:] if a < s.start < b]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_text_tiles(text):
    segs = segment(text)
    if text.strip():
        assert_tiles(text, segs)
