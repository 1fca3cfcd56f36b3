"""Gemini deciding an unsure classification, as people see it: `gembot classify --json` and Slack's
`/classify`, against the Gemini stand-in (the classifier made unsure by GEMBOT_MIN_SIMILARITY)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.handlers.commands.test_classify import classify
from tests.support.cli_support import CLI, on_database
from tests.support.gemini import GeminiStandIn
from tests.support.label_support import block, element, seed, texts_of
from tests.support.slack_fixtures import MakeBotServer

UNSURE = "my parcel and my invoice"


@pytest.fixture
def gembot(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gemini_standin: GeminiStandIn,
) -> CLI:
    cli = on_database(
        database_url,
        tmp_path,
        monkeypatch,
        capsys,
        GEMINI_API_KEY=gemini_standin.api_key,
        GEMINI_BASE_URL=gemini_standin.base_url,
        GEMBOT_EMBEDDER="gemini",
        GEMBOT_GEMINI_RETRIES="0",
        GEMBOT_MIN_SIMILARITY="2",
    )
    for label, text in [("billing", "charged twice on my invoice"), ("shipping", "where is my parcel")]:
        assert cli("labels", "add", label, text).code == 0
    return cli


def test_cli_json_says_gemini_decided(gembot: CLI, gemini_standin: GeminiStandIn) -> None:
    gemini_standin.reply(json.dumps({"label": "shipping"}))
    r = gembot("classify", "--json", UNSURE)
    assert r.code == 0, r.err
    (x,) = r.json_lines()
    assert (x["label"], x["method"]) == ("shipping", "gemini")
    (request,) = gemini_standin.requests("generate")
    assert request.json["generationConfig"]["responseSchema"]["properties"]["label"]["enum"] == [
        "billing",
        "shipping",
        "none of these",
    ]
    # Asked once: the second run reads the answer from the database.
    assert gembot("classify", "--json", UNSURE).json_lines()[0]["method"] == "gemini"
    assert len(gemini_standin.requests("generate")) == 1


def test_cli_with_escalation_off_stays_unsure(
    gembot: CLI, gemini_standin: GeminiStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMBOT_ESCALATE", "off")
    (x,) = gembot("classify", "--json", UNSURE).json_lines()
    assert x["label"] is None and x["method"] != "gemini" and x["reason"]
    assert gemini_standin.requests("generate") == []


def test_slack_says_gemini_decided(make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn) -> None:
    server = make_bot_server(env={"GEMBOT_MIN_SIMILARITY": "2"})
    seed(server)
    gemini_standin.reply(json.dumps({"label": "shipping"}))
    answer = classify(server, UNSURE)
    shown = texts_of(answer)
    assert answer["text"] == "shipping (chosen by Gemini)"
    assert ":label: *shipping* — chosen by Gemini" in shown
    assert (
        ":sparkles: Decided by Gemini: the examples alone left Gembot unsure (closest label is only" in shown
    )
    assert "method: gemini" in shown and "% confident" not in shown
    correct = element(block(answer, "actions"), "classify_correct")
    assert (correct["text"]["text"], correct["value"]) == ("Correct", "shipping")
    assert server.deps is not None
    (logged,) = server.deps.store.recent_classifications(server.team)
    assert (logged.label, logged.method) == ("shipping", "gemini")


def test_slack_none_of_these_is_not_sure_as_before(
    make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn
) -> None:
    server = make_bot_server(env={"GEMBOT_MIN_SIMILARITY": "2"})
    seed(server)
    gemini_standin.reply(json.dumps({"label": "none of these"}))
    answer = classify(server, UNSURE)
    assert answer["text"].startswith("No confident label (closest: ")
    assert "Gemini found no label that fits" in texts_of(answer)
    assert len(gemini_standin.requests("generate")) == 1


def test_slack_without_a_key_never_asks(
    make_bot_server: MakeBotServer, gemini_standin: GeminiStandIn
) -> None:
    server = make_bot_server(gemini=False, env={"GEMBOT_MIN_SIMILARITY": "2"})
    seed(server)
    answer = classify(server, UNSURE)
    assert answer["text"].startswith("No confident label") and "Gemini" not in texts_of(answer)
    assert gemini_standin.requests() == []
