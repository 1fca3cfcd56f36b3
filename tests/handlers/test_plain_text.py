"""`handlers.text.plain`, the one function that turns a Slack message into the text Gembot embeds,
stores and compares, checked against Slack's escaping rules with generated texts.

Slack's wire format (https://docs.slack.dev/messaging/formatting-message-text): a person's `&`,
`<` and `>` arrive as `&amp;`, `&lt;` and `&gt;` (nothing else is escaped), and every `<…>` is a
control sequence: `<@U…>`, `<#C…>`, `<!here>`, `<!subteam^S…>`, `<!date^…|fallback>`, links.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers import lines, text

# Whatever a person may type, any Unicode, markup characters and entities included.
typed = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from("&<>|@#!^;:quotampltg ")), max_size=80
)
ids = st.from_regex(r"[A-Z0-9]{1,11}", fullmatch=True)
names = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<>|\n"), min_size=1, max_size=20)


@given(typed)
def test_plain_undoes_slacks_escaping_exactly(words: str) -> None:
    assert text.plain(text.escape(words)) == words.strip()


@given(typed, ids, typed)
def test_a_mention_without_a_name_reads_as_its_id(before: str, user: str, after: str) -> None:
    sent = f"{text.escape(before)}<@U{user}>{text.escape(after)}"
    assert text.plain(sent) == f"{before}@U{user}{after}".strip()


@given(ids, names)
def test_a_named_mention_reads_as_its_name(user: str, name: str) -> None:
    # A name that is nothing but "@" says nothing: the mention reads as its id instead.
    assert text.plain(f"<@U{user}|{text.escape(name)}>") == ("@" + (name.lstrip("@") or f"U{user}")).strip()


@given(ids, names)
def test_a_channel_reads_as_its_name_or_id(channel: str, name: str) -> None:
    expected = "#" + (name.lstrip("#") or f"C{channel}")  # a name of nothing but "#" reads as the id
    assert text.plain(f"<#C{channel}|{text.escape(name)}>") == expected.strip()
    assert text.plain(f"<#C{channel}>") == f"#C{channel}"


@given(st.lists(st.one_of(typed.map(text.escape), st.just("<!here>"), st.just("<@U1>")), max_size=6))
def test_the_commands_and_the_store_read_a_line_the_same_way(parts: list[str]) -> None:
    """`/similar` and `/cluster` read lines with `lines.split_lines`; `/classify`, `/label add` and
    the shortcut read `text.plain`: one line comes out the same through both."""
    line = " ".join("".join(parts).splitlines())  # one line, by every break `splitlines` knows
    expected = text.plain(line)
    assert lines.split_lines(line) == ([expected] if expected else [])


@given(typed)
def test_nothing_plain_returns_is_live_when_shown_again(words: str) -> None:
    shown = text.neutralise(text.plain(words))
    assert "<!" not in shown and "<@" not in shown and "<#" not in shown


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("<@U123>", "@U123"),
        ("<@U123|ana>", "@ana"),
        ("<!subteam^S1>", "@S1"),
        ("<!subteam^S1|@sre>", "@sre"),
        ("<!here>", "@here"),
        ("<!channel|channel>", "@channel"),
        ("<!date^1392734382^{date}|Feb 18>", "Feb 18"),
        ("<!date^1392734382^{date}>", ""),
        ("&quot;quoted&quot;", "&quot;quoted&quot;"),  # Slack escapes only & < >: this was typed
        ("&amp;quot;", "&quot;"),
        ("&amp;lt;", "&lt;"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("<https://x.io/a?b=1&amp;c=2|the doc>", "the doc"),
        ("<https://x.io>", "https://x.io"),
        ("<mailto:a@b.io|a@b.io>", "a@b.io"),
        ("<mailto:a@b.io>", "a@b.io"),
    ],
)
def test_slack_sequences(sent: str, read: str) -> None:
    assert text.plain(sent) == read
    assert lines.split_lines(sent) == ([read] if read else [])
