"""`gembot ask`, `gembot models` and classification on Gemini embeddings, end to end against the stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.support.cli_support import CLI, runner
from tests.support.gemini import MODELS, GeminiStandIn, ModelInfo
from tests.support.gemini_support import decode_base64, image_bytes

EXAMPLES = Path(__file__).resolve().parents[3] / "core" / "examples" / "intents.csv"


def point_at(monkeypatch: pytest.MonkeyPatch, standin: GeminiStandIn, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'gembot.db'}")
    monkeypatch.setenv("GEMINI_API_KEY", standin.api_key)
    monkeypatch.setenv("GEMINI_BASE_URL", standin.base_url)
    monkeypatch.setenv("GEMBOT_GEMINI_RETRY_DELAY", "0.01")
    for name in ("GOOGLE_API_KEY", "GEMBOT_EMBEDDER", "GEMBOT_TEAM", "GEMBOT_GENERATION_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gembot(
    gemini_standin: GeminiStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> Iterator[CLI]:
    point_at(monkeypatch, gemini_standin, tmp_path)
    yield runner(capsys)


# --------------------------------------------------------------------------- ask


def test_ask_prints_the_answer(gembot: CLI, gemini_standin: GeminiStandIn) -> None:
    r = gembot("ask", "What does Gembot do?")

    assert (r.code, r.out, r.err) == (0, "echo: What does Gembot do?\n", "")
    sent = gemini_standin.last()
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == gemini_standin.api_key


def test_ask_json(gembot: CLI) -> None:
    r = gembot("ask", "--json", "hi", "--model", "gemini-2.5-pro")

    assert r.code == 0, r.err
    [answer] = r.json_lines()
    assert answer == {
        "text": "echo: hi",
        "model": "gemini-2.5-pro",
        "finish_reason": "STOP",
        "usage": {"prompt_tokens": 1, "answer_tokens": 2, "thinking_tokens": 0, "total_tokens": 3},
    }


def test_ask_about_images_with_a_model_and_a_system_instruction(
    gembot: CLI, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    gif, jpeg = tmp_path / "chart.gif", tmp_path / "photo.jpg"
    gif.write_bytes(image_bytes("GIF", size=(8, 8)))
    jpeg.write_bytes(image_bytes("JPEG", size=(8, 8)))

    r = gembot(
        "ask",
        "--image",
        str(gif),
        "--image",
        str(jpeg),
        "--model",
        "gemini-2.5-pro",
        "--system",
        "Be brief.",
        "Compare",
    )

    assert r.code == 0, r.err
    assert r.out.startswith("echo: Compare [image image/png ") and "[image image/jpeg " in r.out
    sent = gemini_standin.last()
    assert sent.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert sent.json["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    blobs = [p["inlineData"] for p in sent.json["contents"][0]["parts"] if "inlineData" in p]
    assert [b["mime_type"] for b in blobs] == ["image/png", "image/jpeg"]
    assert decode_base64(blobs[0]["data"]).startswith(b"\x89PNG")
    assert decode_base64(blobs[1]["data"]) == jpeg.read_bytes()


def test_ask_refuses_what_is_not_an_image_before_sending(
    gembot: CLI, gemini_standin: GeminiStandIn, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body>not a picture</body></html>")

    r = gembot("ask", "--image", str(page), "what is this?")

    assert r.code == 1
    assert r.err.startswith(f"error: {page} is not an image") and r.err.count("\n") == 1
    assert gemini_standin.requests() == []
    assert gembot("ask", "--image", str(tmp_path / "missing.png"), "x").err.startswith("error: no such file")


def test_ask_reads_the_prompt_from_stdin(gembot: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a question\nover two lines\n"))
    assert gembot("ask", "-").out == "echo: a question\nover two lines\n"


def test_ask_without_a_key_says_which_variable(gembot: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    r = gembot("ask", "hi")
    assert r.code == 1
    assert "GEMINI_API_KEY" in r.err


def test_ask_with_a_wrong_key_never_prints_it(gembot: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-not-the-right-key-42")
    r = gembot("ask", "hi")
    assert r.code == 1
    assert (
        r.err == "error: the Gemini API key was refused: check GEMINI_API_KEY (a key from Google AI Studio)\n"
    )
    assert "AIza-not-the-right-key-42" not in r.out + r.err


def test_ask_failures_are_one_line(gembot: CLI, gemini_standin: GeminiStandIn) -> None:
    gemini_standin.block_prompt("SAFETY")
    blocked = gembot("ask", "x")
    gemini_standin.fail_next(status=429, quota="per_day")
    daily = gembot("ask", "x")
    gemini_standin.fail_next(5, status=503)
    down = gembot("ask", "x")

    assert blocked.code == daily.code == down.code == 1
    assert blocked.err.startswith("error: Gemini refused the prompt because it was judged unsafe (SAFETY)")
    assert daily.err.startswith("error: the daily Gemini quota is used up")
    assert down.err.startswith("error: Gemini is unavailable right now (503")
    assert all(r.err.count("\n") == 1 and r.out == "" for r in (blocked, daily, down))


def test_ask_notes_a_truncated_answer(gembot: CLI, gemini_standin: GeminiStandIn) -> None:
    gemini_standin.finish("MAX_TOKENS", text="The answer is")
    r = gembot("ask", "x")
    assert (r.code, r.out) == (0, "The answer is\n")
    assert "cut off" in r.err


# --------------------------------------------------------------------------- models


def test_models_lists_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    many = MODELS + tuple(
        ModelInfo(f"gemini-test-{i:03d}", f"Test {i}", ("generateContent",), 32_768, 8_192)
        for i in range(112)
    )
    with GeminiStandIn(models=many) as standin:
        point_at(monkeypatch, standin, tmp_path)
        assert main(["models"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert main(["models", "--json"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        pages = standin.requests("models")

    assert len(many) == 120
    assert len(table) == 121 and table[0].split() == ["model", "input", "tokens", "methods"]
    assert table[1].split()[:2] == ["gemini-2.5-flash", "1,048,576"]
    assert table[-1].split() == ["gemini-test-111", "32,768", "generateContent"]
    assert [r["name"] for r in rows] == [m.name for m in many]
    embedding = next(r for r in rows if r["name"] == "gemini-embedding-001")
    assert "embedContent" in embedding["methods"] and embedding["input_token_limit"] == 2048
    # 120 models, 50 a page, twice over.
    assert len(pages) == 6
    assert [p.query.get("pageToken") is None for p in pages] == [True, False, False] * 2


# --------------------------------------------------------------------------- classification


def test_classify_on_gemini_embeddings(
    gembot: CLI, gemini_standin: GeminiStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMBOT_EMBEDDER", "gemini")
    assert gembot("labels", "import", str(EXAMPLES)).code == 0
    texts = [
        "Could you help me set up access to the dashboard?",
        "Please restart the staging server tonight.",
        "I think the new logo looks great.",
    ]

    r = gembot("classify", "--json", *texts)

    assert r.code == 0, r.err
    assert [x["label"] for x in r.json_lines()] == ["request", "instruction", "opinion"]
    batches = gemini_standin.requests("embed")
    assert [len(b.json["requests"]) for b in batches] == [24, 3]
    assert {item["taskType"] for b in batches for item in b.json["requests"]} == {"CLASSIFICATION"}
    assert {item["outputDimensionality"] for b in batches for item in b.json["requests"]} == {768}
    assert batches[0].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"

    # Another process, same database: every vector comes from the cache.
    gemini_standin.clear_requests()
    again = gembot("classify", "--json", *texts)
    assert [x["label"] for x in again.json_lines()] == ["request", "instruction", "opinion"]
    assert gemini_standin.requests() == []


def test_similar_and_cluster_embed_for_their_task(
    gembot: CLI, gemini_standin: GeminiStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMBOT_EMBEDDER", "gemini")
    texts = ["the printer is jammed", "printer jammed again", "friday lunch menu", "lunch menu on friday"]

    similar = gembot("similar", "--json", *texts)
    clusters = gembot("cluster", "--json", "--k", "2", *texts)

    assert similar.code == 0 and clusters.code == 0, similar.err + clusters.err
    [similarity_batch, cluster_batch] = gemini_standin.requests("embed")
    assert {r["taskType"] for r in similarity_batch.json["requests"]} == {"SEMANTIC_SIMILARITY"}
    assert {r["taskType"] for r in cluster_batch.json["requests"]} == {"CLUSTERING"}
    best = similar.json_lines()[0]["pairs"][0]
    assert {best["a"], best["b"]} in ({0, 1}, {2, 3})
    groups = sorted(sorted(c["texts"]) for c in clusters.json_lines()[0]["clusters"])
    assert groups == sorted([sorted(texts[:2]), sorted(texts[2:])])
