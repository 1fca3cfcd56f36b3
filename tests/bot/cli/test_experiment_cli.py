"""`gembot experiment`, end to end: the real google-genai SDK against the Gemini stand-in, a SQLite
file, and the shipped tones.csv — run, dry-run, rerun, resume, list, show, compare, export, batch,
and every kind of bad input refused in one line before anything is sent."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.csv_cells import original_cell
from tests.bot.cli.test_gemini_commands import point_at
from tests.support.cli_support import CLI, runner
from tests.support.gemini import GeminiStandIn, Prompt

TONES = Path(__file__).resolve().parents[3] / "core" / "examples" / "tones.csv"
TEMPLATE = "Classify the tone of this message as positive, negative or neutral: {text}"
MODELS = "gemini-2.5-flash-lite,gemini-2.5-flash"
POSITIVE = ("thank", "love", "great", "huge", "appreciate", "fantastic", "nice", "delight")
NEGATIVE = ("fail", "frustrat", "third", "broken", "unbearable", "cancel", "crash", "still no", "why")


def tone(prompt: Prompt) -> str:
    """Flash knows every tone in tones.csv; Flash-Lite calls a crashed laptop neutral."""
    text = prompt.last_user_text.lower()
    if any(word in text for word in POSITIVE):
        return "Positive."
    if any(word in text for word in NEGATIVE) and not (prompt.model.endswith("-lite") and "crash" in text):
        return "negative"
    return "neutral"


@pytest.fixture
def gembot(
    gemini_standin: GeminiStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[CLI]:
    point_at(monkeypatch, gemini_standin, tmp_path)
    monkeypatch.setenv("GEMBOT_BATCH_POLL", "0.01")
    gemini_standin.answer_with(tone)
    yield runner(capsys)


def generated(standin: GeminiStandIn) -> int:
    return len(standin.requests("generate", action="generateContent"))


def run(gembot: CLI, *extra: str) -> object:
    return gembot(
        "experiment", "run", "--prompt", TEMPLATE, "--input", str(TONES), "--model", MODELS,
        "--expected", "expected", "--temperature", "0", "--seed", "7", *extra,
    )  # fmt: skip


def test_two_models_compared_on_the_shipped_csv(gembot: CLI, gemini_standin: GeminiStandIn) -> None:
    r = run(gembot)
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    lines = r.out.splitlines()  # type: ignore[attr-defined]
    lite = next(line for line in lines if line.startswith("gemini-2.5-flash-lite "))
    flash = next(line for line in lines if line.startswith("gemini-2.5-flash "))
    assert "96% (80%–99%) n=24" in lite and "100% (86%–100%) n=24" in flash
    assert generated(gemini_standin) == 48
    assert "experiment #1: 24 rows × 2 models" in r.err  # type: ignore[attr-defined]
    listing = gembot("experiment", "list")
    assert listing.out.startswith("#1\tdone\t") and "tones.csv" in listing.out
    shown = gembot("experiment", "show", "1")
    assert TEMPLATE in shown.out and "'seed': 7" in shown.out and "google-genai" in shown.out


def test_a_dry_run_counts_and_prices_but_generates_nothing(
    gembot: CLI, gemini_standin: GeminiStandIn
) -> None:
    r = gembot(
        "experiment", "run", "--prompt", TEMPLATE, "--input", str(TONES), "--model", MODELS,
        "--max-output-tokens", "5", "--dry-run",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert generated(gemini_standin) == 0 and gemini_standin.requests("generate", action="countTokens")
    assert "gemini-2.5-flash-lite: 24 requests" in r.out and "≤120 output tokens" in r.out
    assert "total: 48 requests to send, about $0.0" in r.out
    assert gembot("experiment", "list").err.startswith("no experiments yet")


def test_a_rerun_repeats_the_locked_configuration_from_the_cache(
    gembot: CLI, gemini_standin: GeminiStandIn
) -> None:
    assert run(gembot).code == 0  # type: ignore[attr-defined]
    gemini_standin.clear_requests()
    again = gembot("experiment", "rerun", "1")
    assert again.code == 0, again.err
    assert generated(gemini_standin) == 0 and "a rerun of #1" in again.err
    assert "paid (cached answers free, judge included): $0.0000" in again.out
    fresh = gembot("experiment", "rerun", "1", "--fresh")
    assert fresh.code == 0 and generated(gemini_standin) == 48


def test_compare_prints_each_experiment_and_draws_the_plot(
    gembot: CLI, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    run(gembot)
    gembot("experiment", "rerun", "1", "--fresh")
    plot = tmp_path / "compare.png"
    r = gembot("experiment", "compare", "1", "2", "--plot", str(plot))
    assert r.code == 0, r.err
    labels = [line.split()[0] for line in r.out.splitlines()[2:6]]
    assert labels == [
        "#1/gemini-2.5-flash-lite",
        "#1/gemini-2.5-flash",
        "#2/gemini-2.5-flash-lite",
        "#2/gemini-2.5-flash",
    ]
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 600
    as_json = gembot("experiment", "compare", "1", "--json").json_lines()
    assert [(j["model"], j["scored"]) for j in as_json] == [
        ("gemini-2.5-flash-lite", 24),
        ("gemini-2.5-flash", 24),
    ]


def test_export_writes_every_row_spreadsheet_safe(
    gembot: CLI, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    gemini_standin.answer_with(
        lambda prompt: '=HYPERLINK("http://evil")' if "coffee" in prompt.last_user_text else tone(prompt)
    )
    run(gembot)
    out = tmp_path / "rows.csv"
    r = gembot("experiment", "export", "1", "--output", str(out))
    assert r.code == 0 and "48 rows" in r.err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 48
    evil = [row for row in rows if "coffee" in row["prompt"]]
    assert {row["answer"] for row in evil} == {'\'=HYPERLINK("http://evil")'}
    assert original_cell(evil[0]["answer"]) == '=HYPERLINK("http://evil")' and evil[0]["score"] == "0.0000"
    assert {"input.text", "input.expected", "latency_ms", "input_tokens", "output_tokens"} <= set(rows[0])
    lines = gembot("experiment", "export", "1", "--format", "jsonl").out.splitlines()
    assert len(lines) == 48 and json.loads(lines[0])["outcome"] == "answered"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--prompt", "Classify this"), "no {column} placeholder"),
        (("--prompt", "Classify {txt}"), "uses {txt}, but tones.csv has no such column"),
        (("--model", "gemini-9-ultra"), "unknown model gemini-9-ultra"),
        (("--score", "contains"), "needs --expected"),
        (("--expected", "label"), "--expected 'label' is not a column of tones.csv"),
        (("--score", "regex:(", "--expected", "expected"), "does not compile"),
        (("--temperature", "9"), "between 0 and 2"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_sent(
    gembot: CLI, gemini_standin: GeminiStandIn, args: tuple[str, ...], words: str
) -> None:
    values = {"--prompt": TEMPLATE, "--input": str(TONES), "--model": "gemini-2.5-flash"}
    values.update(dict(zip(args[::2], args[1::2], strict=True)))
    r = gembot("experiment", "run", *[part for pair in values.items() for part in pair])
    assert r.code == 1 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("error: ") and words in r.err
    assert generated(gemini_standin) == 0
    assert gembot("experiment", "list").err.startswith("no experiments yet")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("bad.csv", b"text\n\xff\xfe\n", "not UTF-8"),
        ("bad.csv", b"", "is empty"),
        ("bad.jsonl", b"{oops\n", "line 1 is not JSON"),
        ("schema", b'{"type": "objekt"}', "not valid JSON Schema"),
        ("schema", b"[1]", "must hold a JSON Schema object"),
    ],
)
def test_unreadable_files_are_one_line_too(
    gembot: CLI, gemini_standin: GeminiStandIn, tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    args = ["--input", str(TONES), "--schema", str(path)] if name == "schema" else ["--input", str(path)]
    r = gembot("experiment", "run", "--prompt", TEMPLATE, "--model", "gemini-2.5-flash", *args)
    assert (r.code, r.out) == (1, "") and words in r.err and r.err.count("\n") == 1
    assert generated(gemini_standin) == 0


def test_a_spent_quota_stops_the_run_and_resume_finishes_it(
    gembot: CLI, gemini_standin: GeminiStandIn
) -> None:
    gemini_standin.fail_next(20, status=429, quota="per_day", on="generate")
    stopped = run(gembot)
    assert stopped.code == 1  # type: ignore[attr-defined]
    assert "carry on with `gembot experiment resume 1`" in stopped.err  # type: ignore[attr-defined]
    assert "Traceback" not in stopped.err  # type: ignore[attr-defined]
    assert gembot("experiment", "list").out.startswith("#1\tstopped")
    # Each resume meets what is left of the 20 failures (16 requests in flight) until none is.
    while (resumed := gembot("experiment", "resume", "1")).code == 1:
        assert "carry on with" in resumed.err
    assert resumed.code == 0, resumed.err
    assert "96% (80%–99%) n=24" in resumed.out
    assert gembot("experiment", "resume", "1").err.startswith("error: experiment #1 is done")


def test_a_batch_experiment_reads_like_any_other_at_half_the_price(
    gembot: CLI, gemini_standin: GeminiStandIn
) -> None:
    online = run(gembot)
    batch = gembot(
        "experiment", "run", "--prompt", TEMPLATE + " ", "--input", str(TONES), "--model", MODELS,
        "--expected", "expected", "--temperature", "0", "--seed", "7", "--batch",
    )  # fmt: skip
    assert batch.code == 0, batch.err
    assert len(gemini_standin.requests("batch", action="batches.create")) == 2
    row = lambda out, model: next(line for line in out.splitlines() if line.startswith(model + " "))  # noqa: E731
    assert "96% (80%–99%) n=24" in row(batch.out, "gemini-2.5-flash-lite")
    exported = list(csv.DictReader(io.StringIO(gembot("experiment", "export", "2").out)))
    assert {r["batch"] for r in exported} == {"true"}
    online_rows = list(csv.DictReader(io.StringIO(gembot("experiment", "export", "1").out)))
    half = sum(float(r["cost"]) for r in exported) / sum(float(r["cost"]) for r in online_rows)
    assert 0.45 < half < 0.55  # one more input token a request ("… " ends the template)
    assert online.code == 0  # type: ignore[attr-defined]


def test_a_judge_grades_on_a_five_point_scale_and_show_names_it(
    gembot: CLI, gemini_standin: GeminiStandIn
) -> None:
    def answer(prompt: Prompt) -> str:
        if prompt.model == "gemini-2.5-pro":
            return json.dumps({"score": 4, "reason": "close enough"})
        return tone(prompt)

    gemini_standin.answer_with(answer)
    r = gembot(
        "experiment", "run", "--prompt", TEMPLATE, "--input", str(TONES), "--model", "gemini-2.5-flash",
        "--score", "judge:Is the tone right?", "--judge-model", "gemini-2.5-pro", "--expected", "expected",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "4.00/5 (4.00–4.00) n=24" in r.out and "judge: $" in r.out
    shown = gembot("experiment", "show", "1").out
    assert "scoring: judge:Is the tone right? (expected: expected, judged by gemini-2.5-pro)" in shown
    judged = [
        q for q in gemini_standin.requests("generate", action="generateContent") if "gemini-2.5-pro" in q.path
    ]
    assert len(judged) == 24  # a verdict a row: every prompt differs
