"""Cluster titles: the prompt, and answers read in every dress models give them."""

from __future__ import annotations

import json

import pytest

from core.gemini.failures import BadResponse
from core.gemini.titles import MAX_TITLE_CHARS, parse_titles, title_groups, title_prompt
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import gemini_client


@pytest.mark.parametrize(
    "answer",
    [
        '{"titles": ["Backups", "Lunch"]}',
        '```json\n{"titles": ["Backups", "Lunch"]}\n```',
        'Sure! Here are the titles:\n{"titles": ["Backups", "Lunch"]}\nHope this helps.',
        '["Backups", "Lunch"]',
        '{"1": "Backups", "2": "Lunch"}',
        '{"Group 1": "Backups", "Group 2": "Lunch"}',
        '{"titles": {"2": "Lunch", "1": "Backups"}}',
        '[{"group": 2, "title": "Lunch"}, {"group": 1, "title": "Backups"}]',
        "1. Backups\n2. Lunch",
        'Group 1: **Backups**\nGroup 2: "Lunch."',
    ],
)
def test_titles_are_read_from_any_reasonable_answer(answer: str) -> None:
    assert parse_titles(answer, 2) == ["Backups", "Lunch"]


def test_missing_empty_and_long_titles() -> None:
    assert parse_titles('{"titles": ["Backups"]}', 2) == ["Backups", None]
    assert parse_titles('{"titles": ["", 42, "  "]}', 3) == [None, None, None]
    assert parse_titles("no idea", 2) == [None, None]
    long = parse_titles(json.dumps(["word " * 40]), 1)[0]
    assert long is not None and len(long) == MAX_TITLE_CHARS and long.endswith("…")
    assert parse_titles('["C# tips", "_Lunch_"]', 2) == ["C# tips", "Lunch"]


def test_the_prompt_shows_each_group_within_bounds() -> None:
    prompt = title_prompt([["a" * 1000, "b"], [f"text {i}" for i in range(20)]])
    assert "Group 1 (2 texts):\n- " + "a" * 300 + "\n- b" in prompt
    assert "- text 11\n- … and 8 more" in prompt and "text 12" not in prompt


def test_one_call_titles_every_group(gemini_standin: GeminiStandIn) -> None:
    client = gemini_client(gemini_standin)
    gemini_standin.reply('{"titles": ["Backups", "Lunch"]}')
    assert title_groups(client, [["backup failed"], ["lunch"]]) == ["Backups", "Lunch"]
    gemini_standin.reply("Nothing useful")
    with pytest.raises(BadResponse):
        title_groups(client, [["backup failed"], ["lunch"]])
    assert len(gemini_standin.requests("generate")) == 2
    assert title_groups(client, []) == []
