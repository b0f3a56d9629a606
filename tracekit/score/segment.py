"""Sentence segmentation for reasoning traces, with exact character offsets.

Reasoning text is prose mixed with LaTeX and code, so a plain "split at a period" breaks formulas
(`$3.5$`, `\\[ x = 1. \\]`) and programs. The segmenter first finds protected regions, where no
boundary may fall: fenced code blocks, inline code, `$$...$$`, `\\[...\\]`, `\\(...\\)`,
`\\begin{env}...\\end{env}` and inline `$...$` (Pandoc's rule: the opening `$` is followed by a
non-space, the closing one preceded by a non-space and not followed by a digit, and no blank line
inside, so "$5 and $10" stays prose). Outside them a sentence ends at:
  - a paragraph break (a blank line),
  - a line break (reasoning traces put one step per line, e.g. GSM8K solutions),
  - `.`, `!` or `?` (plus closing quotes or brackets) followed by whitespace, unless the word
    before is a known abbreviation (e.g., i.e., Dr., vs.) or a list marker at the start of a
    line ("1. ", "a) ").
Decimals (`3.14`) never split because no whitespace follows the point.

Segments tile the text: each one runs from its first character up to the next segment's first
character, so it carries its trailing whitespace, and `"".join(s.text for s in segments) == text`
for every text with a non-whitespace character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENTER_VERSION = "1"

_PROTECTED = re.compile(
    r"(?P<fence>```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z))"
    r"|(?P<display>\$\$.+?\$\$)"
    r"|(?P<bracket>\\\[.+?\\\])"
    r"|(?P<paren>\\\(.+?\\\))"
    r"|(?P<env>\\begin\{(?P<envname>[^}\n]{1,40})\}.*?\\end\{(?P=envname)\})"
    r"|(?P<code>`[^`\n]+`)"
    # inline math: no blank line inside, so a stray currency sign cannot swallow a paragraph
    r"|(?P<inline>(?<![\\$])\$(?=[^\s$])(?:[^$\\\n]|\\.|\n(?![ \t]*\n))+?(?<=\S)(?<!\\)\$(?![\d$]))",
    re.DOTALL,
)
_BREAK = re.compile(
    r"(?P<para>\n[ \t]*\n\s*)"  # a blank line (and any whitespace after it)
    r"|(?P<line>\n\s*)"  # a line break
    r"|(?P<stop>[.!?]+[\"'”’)\]]*)(?P<ws>\s+)"  # terminal punctuation, then whitespace
)
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "cf",
        "vs",
        "al",
        "fig",
        "figs",
        "eq",
        "eqs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "approx",
        "resp",
        "vol",
        "pp",
    ]
)
# "1." "12." "a." "iv." "(a)" at the start of a line: a list marker, not a sentence
_LIST_MARKER = re.compile(r"(?:^|\n)[ \t]*(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)]$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


@dataclass(frozen=True)
class Segment:
    """One sentence: text[start:end] including its trailing whitespace; `paragraph` counts the
    blank lines before it, so paragraph breaks survive the flat list."""

    idx: int
    start: int
    end: int
    text: str
    paragraph: int

    @property
    def sentence(self) -> str:
        """The sentence without surrounding whitespace (for display)."""
        return self.text.strip()


def protected_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every region in which a sentence boundary must not fall."""
    return [m.span() for m in _PROTECTED.finditer(text)]


def _is_abbreviation(text: str, stop_start: int, stop: str) -> bool:
    if stop != ".":
        return False
    m = _WORD_BEFORE.search(text, max(0, stop_start - 12), stop_start)
    if not m:
        return False
    word = m.group(1).lower()
    return word in _ABBREVIATIONS or word.rstrip(".") in _ABBREVIATIONS


def _is_list_marker(text: str, stop_end: int) -> bool:
    line_start = text.rfind("\n", 0, stop_end) + 1
    return _LIST_MARKER.search(text[max(0, line_start - 1) : stop_end]) is not None


def boundaries(text: str) -> list[tuple[int, bool]]:
    """Positions where a new sentence starts (after the whitespace that ends the previous one),
    each with whether a paragraph break precedes it."""
    spans = protected_spans(text)
    result: list[tuple[int, bool]] = []
    si = 0
    for m in _BREAK.finditer(text):
        pos = m.start()
        while si < len(spans) and spans[si][1] <= pos:
            si += 1
        if si < len(spans) and spans[si][0] < m.end() and pos < spans[si][1]:
            continue  # inside (or overlapping) a protected region
        if m.group("stop") is not None:
            stop = m.group("stop")
            if _is_abbreviation(text, pos, stop.rstrip("\"'”’)]")) or _is_list_marker(
                text, m.end("stop")
            ):
                continue
        end = m.end()
        if end >= len(text):
            continue
        para = m.group("para") is not None or (
            m.group("ws") is not None and _BLANK_LINE.search(m.group("ws")) is not None
        )
        result.append((end, para))
    return result


def segment(text: str) -> list[Segment]:
    """Split `text` into sentences that tile it exactly (see the module docstring)."""
    if not text or not text.strip():
        return []
    # leading whitespace belongs to the first sentence, not to a sentence of its own
    first = len(text) - len(text.lstrip())
    starts = [(0, False)] + [b for b in boundaries(text) if b[0] > first]
    segments: list[Segment] = []
    paragraph = 0
    for i, (start, para) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if end <= start:
            continue
        paragraph += int(para)
        segments.append(Segment(len(segments), start, end, text[start:end], paragraph))
    return segments
