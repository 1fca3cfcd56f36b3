"""The `/classify` answer as Block Kit, from a `Prediction`: the confidence in words, and the
controls under it (nearest-label buttons when not sure), within Slack's limits."""

from __future__ import annotations

from core.classify import Prediction
from handlers.actions.classify_feedback import (
    BLOCK_PREFIX,
    CORRECT,
    PICK,
    RELABEL,
    WHICH_IS_IT,
    feedback_blocks,
)
from handlers.commands.classify import result_blocks, summary
from handlers.label_sets import option_value


def prediction(
    label: str | None,
    scores: dict[str, float],
    *,
    best: str | None = None,
    confidence: float = 0.72,
    method: str = "centroid",
    reason: str | None = None,
) -> Prediction:
    best_label = best or label or next(iter(scores))
    return Prediction(
        label=label,
        best_label=best_label,
        confidence=confidence,
        scores=scores,
        probabilities={name: confidence if name == best_label else 0.0 for name in scores},
        method=method,
        abstained=label is None,
        reason=reason
        if reason is not None
        else ("it is unlike this set's examples" if label is None else None),
    )


SCORES = {"billing": 0.61, "refunds": 0.58, "shipping": 0.40, "account": 0.31, "praise": 0.10}


def test_an_answer_states_its_confidence_in_words() -> None:
    answered = prediction("billing", SCORES, confidence=0.72)
    assert summary(answered) == "likely: billing (72%)"
    assert result_blocks(answered)[0]["text"]["text"] == ":label: likely: *billing* (72%)"
    assert summary(prediction("billing", SCORES, confidence=0.93)) == "almost certainly: billing (93%)"
    assert summary(prediction("billing", SCORES, confidence=0.999)) == "almost certainly: billing (99%)"
    assert summary(prediction("billing", SCORES, confidence=0.55)) == "maybe: billing (55%)"
    assert summary(prediction("billing", SCORES, confidence=0.31)) == "possibly: billing (31%)"


def test_gemini_keeps_its_own_wording() -> None:
    chosen = prediction("shipping", SCORES, method="gemini", reason="closest label is only 0.40")
    assert summary(chosen) == "shipping (chosen by Gemini)"
    headline, decided, _ = result_blocks(chosen)
    assert headline["text"]["text"] == ":label: *shipping* — chosen by Gemini"
    assert decided["elements"][0]["text"] == ":sparkles: Decided by Gemini: closest label is only 0.40."


def test_an_answer_gets_correct_and_wrong_label() -> None:
    (actions,) = feedback_blocks(7, prediction("billing", SCORES))
    assert actions["block_id"] == f"{BLOCK_PREFIX}7"
    correct, relabel = actions["elements"]
    assert (correct["action_id"], correct["text"]["text"], correct["value"]) == (
        CORRECT,
        "Correct",
        "billing",
    )
    assert relabel["action_id"] == RELABEL and relabel["placeholder"]["text"] == "Wrong label…"
    assert [o["value"] for o in relabel["options"]] == ["refunds", "shipping", "account", "praise"]


def test_not_sure_offers_the_three_nearest_labels_as_buttons_and_the_rest_in_a_picker() -> None:
    # The most probable label comes first even where another has the higher cosine.
    ask, actions = feedback_blocks(8, prediction(None, SCORES, best="refunds"))
    assert ask["type"] == "context" and ask["elements"][0]["text"] == WHICH_IS_IT
    assert ask["block_id"] == "classify_ask:8" and actions["block_id"] == f"{BLOCK_PREFIX}8"
    *buttons, picker = actions["elements"]
    assert [(b["type"], b["action_id"], b["text"]["text"], b["value"]) for b in buttons] == [
        ("button", f"{PICK}1", "refunds", "refunds"),
        ("button", f"{PICK}2", "billing", "billing"),
        ("button", f"{PICK}3", "shipping", "shipping"),
    ]
    assert all("style" not in b for b in buttons)  # none is the answer, so none is highlighted
    assert picker["action_id"] == RELABEL and picker["placeholder"]["text"] == "Another label…"
    assert [o["value"] for o in picker["options"]] == ["account", "praise"]


def test_not_sure_with_two_labels_has_two_buttons_and_no_picker() -> None:
    _, actions = feedback_blocks(9, prediction(None, {"billing": 0.3, "shipping": 0.2}))
    assert [e["action_id"] for e in actions["elements"]] == [f"{PICK}1", f"{PICK}2"]


def test_button_texts_and_values_stay_within_slacks_limits() -> None:
    long_name = "a very long label name " * 12
    assert len(long_name) > 150
    _, actions = feedback_blocks(10, prediction(None, {long_name: 0.3, "billing": 0.2}))
    first = actions["elements"][0]
    assert len(first["text"]["text"]) <= 75 and first["text"]["text"].endswith("…")
    assert first["value"] == option_value(long_name) and first["value"].startswith("sha:")
    assert len(first["value"]) <= 150
