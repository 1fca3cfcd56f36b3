"""`handlers.text`: model output neutralised, Markdown as mrkdwn, long text within Block Kit's limits."""

from __future__ import annotations

import re
import time

import pytest

from handlers import text

LIVE = re.compile(r"<[!@#]")


@pytest.mark.parametrize(
    "dangerous",
    [
        "<!channel>",
        "<!here>",
        "<!here|here>",
        "<!everyone>",
        "<@U123ABC>",
        "<@W123|someone>",
        "<#C123|general>",
        "<!subteam^S123|@team>",
        "<!date^1392734382^{date}|Feb 18>",
    ],
)
def test_no_control_sequence_survives(dangerous: str) -> None:
    for convert in (text.neutralise, text.to_mrkdwn):
        out = convert(f"before {dangerous} after")
        assert not LIVE.search(out), out
        assert "&lt;" in out
    in_code = text.to_mrkdwn(f"`{dangerous}` and\n```\n{dangerous}\n```")
    assert not LIVE.search(in_code)


def test_bare_broadcast_words_are_broken_up() -> None:
    out = text.neutralise("Hey @channel, @here and @Everyone! email@here.com")
    assert "@channel" not in out and "@here " not in out and "@Everyone" not in out
    assert out.count(text.ZERO_WIDTH_SPACE) == 3


def test_escaping_is_slacks_three_characters() -> None:
    assert text.escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert text.neutralise("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"  # shows as typed


def test_markdown_becomes_mrkdwn() -> None:
    markdown = (
        "# Title\n"
        "Some **bold**, *italic*, __also bold__ and ~~gone~~ text.\n"
        "- first\n"
        "* second\n"
        "  + nested\n"
        "See [the docs](https://example.com/a?b=1&c=2) or `**not bold**`.\n"
        "```python\nprint('<@U1>' if a < b else '**x**')\n```"
    )
    assert text.to_mrkdwn(markdown) == (
        "*Title*\n"
        "Some *bold*, _italic_, *also bold* and ~gone~ text.\n"
        "• first\n"
        "• second\n"
        "  • nested\n"
        "See the docs (<https://example.com/a?b=1&amp;c=2>) or `**not bold**`.\n"
        "```print('&lt;@U1&gt;' if a &lt; b else '**x**')```"
    )


def test_only_web_links_become_links() -> None:
    out = text.to_mrkdwn("[x](javascript:alert(1)) [y](slack://open) [z](https://ok.example/p)")
    assert out.count("<") == 1 and "z (<https://ok.example/p>)" in out


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        ("[your invoice](https://evil.example/steal)", "your invoice (<https://evil.example/steal>)"),
        ("[https://bank.example](https://evil.example)", "https://bank.example (<https://evil.example>)"),
        ("[https://ok.example/a](https://ok.example/a)", "<https://ok.example/a>"),
        ("[ok.example](https://ok.example/)", "<https://ok.example/>"),
    ],
)
def test_a_link_shows_where_it_goes(markdown: str, shown: str) -> None:
    out = text.to_mrkdwn(markdown)
    assert out == shown
    assert "|" not in out  # no `<url|text>`: the text could hide the URL


@pytest.mark.parametrize("unit", ["__a ", "~~a ", "**a ", "*a ", "[a](", "`a ", "# a\n", "- a "])
def test_conversion_is_fast_on_pathological_input(unit: str) -> None:
    bomb = (unit * (40_000 // len(unit)))[:40_000]
    started = time.perf_counter()
    plan = text.plan_message(bomb)
    text.to_mrkdwn(bomb[:32_000])
    # Each took seconds with the quadratic regexes; linear work is milliseconds. The bound is loose
    # so a loaded machine passes, and tight enough that quadratic time cannot.
    assert time.perf_counter() - started < 1.0
    assert plan.as_file  # too long for one message: the whole answer goes up as a file


def test_pairing_matches_the_markdown_rules() -> None:
    assert text.to_mrkdwn("a **b** c **d e** f ** g** h**i**") == "a *b* c *d e* f ** g** h*i*"
    assert text.to_mrkdwn("__x__ and ~~y z~~ and ~~ no~~") == "*x* and ~y z~ and ~~ no~~"
    assert text.to_mrkdwn("**open\nclose**") == "**open\nclose**"  # never across lines


def test_short_text_is_one_piece() -> None:
    assert text.split_text("hello") == ["hello"]
    assert text.split_text("") == []


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    paragraphs = "\n\n".join(["a" * 1200, "b" * 1200, "c" * 1200])
    assert text.split_text(paragraphs) == ["a" * 1200 + "\n\n" + "b" * 1200, "c" * 1200]
    words = " ".join(["word"] * 2000)
    pieces = text.split_text(words)
    assert all(len(p) <= 3000 for p in pieces)
    assert " ".join(pieces) == words


def test_split_never_cuts_an_escape_or_a_link() -> None:
    dense = "&amp;" * 1000  # no spaces at all
    pieces = text.split_text(dense, 100)
    assert all(p.startswith("&amp;") and p.endswith("&amp;") for p in pieces)
    assert "".join(pieces) == dense
    linked = "x" * 90 + "<https://example.com/" + "p" * 10 + "|a link with words>" + " tail"
    pieces = text.split_text(linked, 100)
    assert any(p.startswith("<https://") and "|a link with words>" in p for p in pieces)


def test_a_code_block_cut_in_two_is_closed_and_reopened() -> None:
    code = "```" + "\n".join(f"line {i}" for i in range(1000)) + "```"
    pieces = text.split_text(code)
    assert len(pieces) > 1
    for piece in pieces:
        assert len(piece) <= 3000
        assert piece.startswith("```") and piece.endswith("```")


def test_plan_keeps_within_block_kit_limits() -> None:
    header = [text.context("asked")]
    small = text.plan_message("Hello **there**", header=header)
    assert small == text.MessagePlan(
        [header[0], text.section("Hello *there*")], "Hello *there*", as_file=False
    )

    medium = text.plan_message("\n\n".join(["x" * 2500] * 4))
    assert not medium.as_file and len(medium.blocks) == 4

    huge = text.plan_message("\n\n".join(["y" * 2000] * 100), header=header)
    assert huge.as_file
    assert len(huge.blocks) <= text.MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= 3000 for b in huge.blocks if b["type"] == "section")
    assert len(huge.text) <= text.FALLBACK_LIMIT


def test_fallback_is_short() -> None:
    assert text.fallback("short") == "short"
    long = text.fallback("word " * 2000)
    assert len(long) <= text.FALLBACK_LIMIT and long.endswith("…")
