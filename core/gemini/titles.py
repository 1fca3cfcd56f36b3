"""Naming groups of texts in a few words: one Gemini call for all the groups, a JSON answer read leniently.

Models asked for JSON answer it in many dresses: fenced in ```json, wrapped in a sentence, as a
list, as `{"titles": [...]}`, as `{"1": ...}` or `{"Group 1": ...}`, or as a numbered list when
they forget the JSON altogether. `parse_titles` accepts all of these; a group whose title is
missing or empty gets None, and the caller decides what to call it instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from core.gemini.client import GeminiClient
from core.gemini.failures import BadResponse
from core.gemini.generation import generate

#: Texts of a group shown to the model, and the characters of each: a title needs no more.
TEXTS_PER_GROUP = 12
CHARS_PER_TEXT = 300
#: A title longer than this is cut (models sometimes answer with a sentence).
MAX_TITLE_CHARS = 60

SYSTEM_INSTRUCTION = (
    "You name groups of short texts. For each group, write a title of two to five words that says "
    "what the texts in it have in common; titles of different groups should tell them apart. "
    "Write the titles in the language of the texts, without quotes or a final period. "
    'Answer with JSON only, in this shape: {"titles": ["title of group 1", "title of group 2"]}, '
    "exactly one title per group, in the order of the groups."
)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_NUMBERED = re.compile(
    r"^\s*[-*•]?\s*(?:group|cluster)?\s*#?(\d{1,3})\s*[.):\-–—]\s*(.+?)\s*$", re.IGNORECASE
)
_KEY_NUMBER = re.compile(r"(\d{1,3})")
_MARKUP = re.compile(r"[*`]+")


def title_prompt(groups: Sequence[Sequence[str]]) -> str:
    """The user turn listing every group (at most `TEXTS_PER_GROUP` texts each, each shortened)."""
    parts = [f"Name each of these {len(groups)} groups of texts."]
    for number, group in enumerate(groups, 1):
        shown = [" ".join(t.split())[:CHARS_PER_TEXT] for t in group[:TEXTS_PER_GROUP]]
        more = len(group) - len(shown)
        lines = [f"Group {number} ({len(group)} text{'s' if len(group) != 1 else ''}):"]
        lines += [f"- {t}" for t in shown]
        if more > 0:
            lines.append(f"- … and {more} more")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def title_groups(client: GeminiClient, groups: Sequence[Sequence[str]]) -> list[str | None]:
    """A title of a few words for each group of texts, from one Gemini call, in the groups' order.

    Entries are None where the model gave no usable title. Raises BadResponse when the answer
    holds no titles at all, and the client's errors (quota, unavailable, blocked) when the call
    fails: titles are a nicety, so callers are expected to catch `GeminiError` and do without.
    """
    if not groups:
        return []
    answer = generate(client, title_prompt(groups), system_instruction=SYSTEM_INSTRUCTION, temperature=0.2)
    titles = parse_titles(answer.text, len(groups))
    if not any(titles):
        raise BadResponse("Gemini's answer held no titles for the groups")
    return titles


def parse_titles(answer: str, count: int) -> list[str | None]:
    """The `count` titles in a model's answer, in order, None where one is missing (see the module doc)."""
    found: dict[int, Any] = {}
    for candidate in _json_candidates(answer):
        found = _from_json(candidate, count)
        if found:
            break
    if not found:
        for line in answer.splitlines():
            match = _NUMBERED.match(line)
            if match:
                found.setdefault(int(match.group(1)) - 1, match.group(2))
    return [_clean(found.get(index)) for index in range(count)]


def _json_candidates(answer: str) -> list[Any]:
    """JSON values in `answer`: the whole of it, each fenced block, then the first value in the prose."""
    texts = [answer.strip(), *(m.group(1).strip() for m in _FENCE.finditer(answer))]
    values: list[Any] = []
    decoder = json.JSONDecoder()
    for text in texts:
        try:
            values.append(json.loads(text))
            continue
        except ValueError:
            pass
        for start, char in enumerate(text):
            if char in "[{":
                try:
                    value, _ = decoder.raw_decode(text, start)
                except ValueError:
                    continue
                values.append(value)
                break
    return values


def _from_json(value: Any, count: int) -> dict[int, Any]:
    if isinstance(value, dict):
        for key in ("titles", "groups", "clusters", "names"):
            if key in value:
                return _from_json(value[key], count)
        numbered: dict[int, Any] = {}
        for key, item in value.items():
            match = _KEY_NUMBER.search(str(key))
            if match:
                numbered.setdefault(int(match.group(1)) - 1, _title_of(item))
        return numbered
    if isinstance(value, list):
        out: dict[int, Any] = {}
        for position, item in enumerate(value):
            index = position
            if isinstance(item, dict):
                number = item.get("group", item.get("cluster", item.get("id")))
                if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= count:
                    index = number - 1
            out.setdefault(index, _title_of(item))
        return out
    return {}


def _title_of(item: Any) -> Any:
    if isinstance(item, dict):
        for key in ("title", "name", "label"):
            if key in item:
                return item[key]
        return None
    return item


def _clean(title: Any) -> str | None:
    if not isinstance(title, str):
        return None
    flat = " ".join(_MARKUP.sub("", title).split()).lstrip("# ").strip(" _\"'“”‘’«»")
    flat = flat.rstrip(".").strip()
    if not flat:
        return None
    if len(flat) > MAX_TITLE_CHARS:
        flat = flat[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return flat
