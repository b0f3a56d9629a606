"""The math verifier on the pitfalls that make graders disagree, with real examples."""

from __future__ import annotations

import pytest

from tracekit.verify.math import check, extract_predictions, find_boxed, parse_gold, reference_text


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("10000", "So the total is $\\boxed{10{,}000}$.", True),
        ("27.0", "The answer is \\boxed{27}", True),  # longcot gt reformatted 27 -> 27.0
        ("27", "\\boxed{27.0}", True),
        ("12", "The side is \\boxed{12 \\text{ cm}}.", True),
        ("73", "Adding up, the answer is **73**", True),
        ("(1,2)", "\\boxed{(1, 2)}", True),
        ("(1,2]", "\\boxed{[1,2)}", False),  # intervals compare their ends
        (
            "\\left( 3, \\frac{\\pi}{2} \\right)",
            "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
            True,
        ),
        (
            "\\left( 3, \\frac{\\pi}{2} \\right)",
            "\\boxed{3}",
            False,
        ),  # bare gold must not parse as 3
        ("\\frac{1}{2}", "\\boxed{0.5}", True),
        ("5", "First \\boxed{3}, no wait, \\boxed{5}", True),  # the last box is the answer
        ("3", "First \\boxed{3}, no wait, \\boxed{5}", False),
        ("3, 5", "\\boxed{3} and \\boxed{5}", True),  # two roots boxed apart match a set gold
        ("12", "\\[ \\boxed{12^{\\text{th}}\\text{ grade}} \\]", True),
        ("18", "She makes 9 * 2 = $<<9*2=18>>18 every day.\nA: 18", True),  # GSM8K model solution
        ("Janet sells 9 eggs.\n#### 18", "A: 18", True),  # GSM8K reference after ####
        ("20", "Therefore, the sum \\(a + b + c = 11 + 9 + 0 = 20\\).", True),
        ("\\text{east}", "So, the final answer is east.", True),
    ],
)
def test_pitfalls(reference: str, answer: str, correct: bool) -> None:
    o = check(reference, answer)
    assert o.status == "ok", o
    assert o.correct is correct, o


def test_empty_box_falls_back_and_empty_answer_is_no_answer() -> None:
    assert check("5", "\\boxed{}").status == "no_answer"
    assert check("5", "\\boxed{} so the answer is 5.").correct is True
    o = check("5", "   ")
    assert (o.status, o.correct) == ("no_answer", False)


def test_reference_that_does_not_parse_is_never_correct() -> None:
    for ref in (None, "", "   ", "\\boxed{}"):
        o = check(ref, "\\boxed{5}")
        assert o.status == "no_reference" and o.correct is None


def test_reference_text_and_boxes() -> None:
    assert reference_text("work\n#### 1,234") == "1,234"
    assert reference_text("$\\frac{1}{2}$") == "\\frac{1}{2}"
    assert find_boxed("a \\boxed{\\frac{1}{\\sqrt{2}}} b \\fbox{x}") == [
        "\\frac{1}{\\sqrt{2}}",
        "x",
    ]
    gold, ref = parse_gold("#### 42")
    assert ref == "42" and gold
    assert extract_predictions("\\boxed{7}")[0].source == "boxed"
    assert extract_predictions("blah\nA: 7")[0].source == "final_line"


# Real answer parts from longcot/math500__Sky-T1-math-correct-5K-27B.jsonl where the file's own
# grader (its `score`) and this verifier differ; the reference is MATH-500's `answer`.
def test_real_case_other_grader_wrong() -> None:
    # idx 113: their extractor read "definitely8000" and said wrong; 8000 is right
    answer = (
        "[\n90^2 - 10^2 = (90 - 10)(90 + 10) = 80 \\times 100 = 8000 \\quad \\text{(correct)}\n\\]\n\n"
        "Everything checks out. I think the answer is definitely \\(8000\\)."
    )
    assert check("8000", answer).correct is True
    # idx 376: their extractor kept only "-2" of the point (8, -2)
    answer = (
        "Yes, the distances are equal, so the point is indeed equidistant from both points.\n\n"
        "Therefore, the coordinates of point \\( p \\) are \\( (8, -2) \\)."
    )
    assert check("(8,-2)", answer).correct is True


def test_real_case_this_verifier_stricter() -> None:
    # idx 428: the trace was cut off inside its solution; the file's grader found "64" in the
    # reasoning and said correct, this verifier reads only the answer part: no final answer
    o = check("64", "Let \\( a, b, c, d")
    assert o.status == "no_answer" and o.correct is False
    # idx 200: the solution stops at "= " ; the product 42 * 20/21 is 40, so math says correct
    # while the file's grader (pred "21") said wrong: a judgement call, recorded as such
    o = check(
        "40", "Therefore, daps = baps * (20/21)\n\nNow, plug in 42 baps:\n\ndaps = 42 * (20/21) ="
    )
    assert o.status == "ok"
