"""The `gembot` command line end to end, on the real MiniLM model and on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from tests.support.cli_support import CLI, Run, on_database

EXAMPLES = Path(__file__).resolve().parents[3] / "core" / "examples" / "intents.csv"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def cli(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CLI:
    return on_database(database_url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def seeded(cli: CLI) -> CLI:
    assert cli("labels", "import", str(EXAMPLES)).code == 0
    return cli


def test_import_then_classify_each_intent(seeded: CLI) -> None:
    r = seeded(
        "classify",
        "--json",
        "Please restart the build server tonight.",
        "Could you send me the meeting notes?",
        "I think the new office is wonderful.",
    )
    assert r.code == 0, r.err
    results = r.json_lines()
    assert [x["label"] for x in results] == ["instruction", "request", "opinion"]
    for x in results:
        assert set(x) >= {"text", "label", "confidence", "scores", "method"}
        assert set(x["scores"]) == {"instruction", "request", "opinion"}
        assert all(-1.0 <= s <= 1.0 for s in x["scores"].values())
        assert x["method"] in ("centroid", "logreg")
        # Calibrated: a clear case is not a near-uniform 0.36/0.32/0.32.
        assert x["confidence"] > 0.5


def test_scores_are_cosines_to_centroids_whatever_the_method(seeded: CLI) -> None:
    by_method = {
        m: seeded("classify", "--json", "--method", m, "Can you share the slides?").json_lines()[0]
        for m in ("centroid", "logreg")
    }
    assert by_method["centroid"]["method"] == "centroid"
    assert by_method["logreg"]["method"] == "logreg"
    assert by_method["centroid"]["scores"] == by_method["logreg"]["scores"]


def test_out_of_domain_text_is_not_sure(seeded: CLI) -> None:
    r = seeded("classify", "--json", "Photosynthesis converts light energy into glucose in chloroplasts.")
    assert r.code == 0
    (x,) = r.json_lines()
    assert x["label"] is None
    assert x["best_label"] in ("instruction", "request", "opinion")
    assert x["reason"]
    plain = seeded("classify", "Photosynthesis converts light energy into glucose in chloroplasts.")
    assert plain.out.startswith("not sure")


def test_export_import_export_is_identical(seeded: CLI, tmp_path: Path) -> None:
    for fmt in ("csv", "json"):
        first = seeded("labels", "export", "--format", fmt)
        assert first.code == 0
        path = tmp_path / f"export.{fmt}"
        path.write_text(first.out, encoding="utf-8")
        assert seeded("labels", "import", str(path), "--set", f"copy-{fmt}").code == 0
        second = seeded("labels", "export", "--format", fmt, "--set", f"copy-{fmt}")
        if fmt == "json":
            # The set's name is part of the document; everything else must match exactly.
            assert json.loads(second.out)["examples"] == json.loads(first.out)["examples"]
        else:
            assert second.out == first.out
    rows = list(csv.DictReader(io.StringIO(first_csv := seeded("labels", "export").out)))
    assert len(rows) == 24 and first_csv.startswith("text,label,author,source_url\n")


def test_export_neutralises_formulas_unless_raw(cli: CLI, tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.invalid/?x","click")'
    assert cli("labels", "add", "fruit", formula, "--author=-someone").code == 0
    assert cli("labels", "add", "@risk", "'=already quoted").code == 0
    safe = cli("labels", "export")
    assert safe.code == 0
    assert list(csv.reader(io.StringIO(safe.out))) == [
        ["text", "label", "author", "source_url"],
        ["''=already quoted", "'@risk", "", ""],
        ["'" + formula, "fruit", "'-someone", ""],
    ]
    # Imported again, the file gives back the exact texts, and exports the same bytes.
    path = tmp_path / "safe.csv"
    path.write_text(safe.out, encoding="utf-8")
    assert cli("labels", "import", str(path), "--set", "copy").code == 0
    copied = cli("labels", "list", "--set", "copy", "--json").json_lines()
    assert [(x["label"], x["text"], x["author"]) for x in copied] == [
        ("@risk", "'=already quoted", None),
        ("fruit", formula, "-someone"),
    ]
    assert cli("labels", "export", "--set", "copy").out == safe.out
    # --raw: the cells exactly as stored, for tools that are no spreadsheet.
    raw = cli("labels", "export", "--raw")
    assert raw.code == 0
    assert list(csv.reader(io.StringIO(raw.out)))[1:] == [
        ["'=already quoted", "@risk", "", ""],
        [formula, "fruit", "-someone", ""],
    ]
    # JSON is no spreadsheet format: as stored either way.
    for extra in ((), ("--raw",)):
        document = json.loads(cli("labels", "export", "--format", "json", *extra).out)
        assert [e["text"] for e in document["examples"]] == ["'=already quoted", formula]


def test_export_to_file(seeded: CLI, tmp_path: Path) -> None:
    out = tmp_path / "set.json"
    r = seeded("labels", "export", "--format", "json", "--output", str(out))
    assert r.code == 0 and r.out == ""
    assert len(json.loads(out.read_text())["examples"]) == 24


def test_add_list_remove_and_sets(cli: CLI) -> None:
    r = cli("labels", "add", "bug", "The app crashes on start", "--json", "--author", "U123")
    assert r.code == 0
    (added,) = r.json_lines()
    assert added["added"] == 1
    assert cli("labels", "add", "bug", "  The app crashes on start  ", "--json").json_lines()[0]["added"] == 0
    cli("labels", "add", "praise", "Love the new release")
    listed = cli("labels", "list", "--json").json_lines()
    assert [(x["label"], x["text"], x["author"]) for x in listed] == [
        ("bug", "The app crashes on start", "U123"),
        ("praise", "Love the new release", None),
    ]
    assert [x["label"] for x in cli("labels", "list", "praise", "--json").json_lines()] == ["praise"]
    sets = cli("labels", "sets", "--json").json_lines()
    assert sets == [{"set": "default", "version": 3, "labels": {"bug": 1, "praise": 1}}]
    removed = cli("labels", "remove", str(added["ids"][0]), "--json")
    assert removed.code == 0 and removed.json_lines()[0]["label"] == "bug"
    assert cli("labels", "remove", "--label", "praise").code == 0
    assert cli("labels", "list", "--json").out == ""


def test_removing_a_whole_set_leaves_the_others(cli: CLI) -> None:
    cli("labels", "add", "bug", "The app crashes on start", "--set", "triage")
    cli("labels", "add", "praise", "Love the new release", "--set", "triage")
    cli("labels", "add", "sun", "Clear skies all day", "--set", "weather")
    removed = cli("labels", "remove", "--all", "--set", "triage", "--json")
    assert removed.code == 0 and removed.json_lines() == [{"set": "triage", "removed": True}]
    assert [x["set"] for x in cli("labels", "sets", "--json").json_lines()] == ["weather"]
    history = cli("labels", "history", "--set", "triage", "--json").json_lines()
    assert history[0]["action"] == "remove_set" and history[0]["count"] == 2
    again = cli("labels", "remove", "--all", "--set", "triage")
    assert again.code != 0 and "triage" in again.err and "Traceback" not in again.err


def test_teams_and_sets_are_separate(cli: CLI) -> None:
    cli("labels", "add", "a", "alpha text", "--team", "T1")
    cli("labels", "add", "b", "beta text", "--team", "T2", "--set", "other")
    assert [x["set"] for x in cli("labels", "sets", "--json", "--team", "T1").json_lines()] == ["default"]
    assert [x["set"] for x in cli("labels", "sets", "--json", "--team", "T2").json_lines()] == ["other"]
    r = cli("labels", "list", "--team", "T1", "--set", "other")
    assert r.code == 1 and "other" in r.err


def test_classify_csv_file(seeded: CLI, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        'id,text\n1,Please deploy the hotfix now.\n2,"Could you look at my draft, please?"\n',
        encoding="utf-8",
    )
    dst = tmp_path / "out.csv"
    r = seeded("classify", "--input", str(src), "--output", str(dst), "--progress")
    assert r.code == 0, r.err
    assert "classified 2/2" in r.err
    rows = list(csv.DictReader(dst.open(encoding="utf-8")))
    assert [row["id"] for row in rows] == ["1", "2"]
    assert [row["label"] for row in rows] == ["instruction", "request"]
    assert {"confidence", "score:instruction", "score:request", "score:opinion"} <= set(rows[0])
    assert 0 < float(rows[0]["confidence"]) <= 1


def test_similar_with_heatmap(cli: CLI, tmp_path: Path) -> None:
    heatmap = tmp_path / "sim.png"
    r = cli(
        "similar",
        "--json",
        "--heatmap",
        str(heatmap),
        "The cat sat on the mat.",
        "A cat was sitting on a rug.",
        "Quarterly revenue grew by ten percent.",
    )
    assert r.code == 0, r.err
    (result,) = r.json_lines()
    assert result["pairs"][0]["a"] == 0 and result["pairs"][0]["b"] == 1
    assert result["matrix"][0][0] == pytest.approx(1.0, abs=1e-3)
    assert heatmap.read_bytes().startswith(PNG)


def test_cluster_with_plot(cli: CLI, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text(
        "\n".join(
            [
                "The server is down again",
                "Production database outage",
                "Our API returns 500 errors",
                "Team lunch on Friday?",
                "Who wants pizza for lunch",
                "Let's grab lunch together tomorrow",
            ]
        ),
        encoding="utf-8",
    )
    plot = tmp_path / "clusters.png"
    r = cli("cluster", "--input", str(texts), "--k", "2", "--plot", str(plot), "--json")
    assert r.code == 0, r.err
    (result,) = r.json_lines()
    groups = sorted(sorted(c["texts"]) for c in result["clusters"])
    assert len(groups) == 2
    assert {"Team lunch on Friday?", "Who wants pizza for lunch"} <= set(
        next(g for g in groups if "Team lunch on Friday?" in g)
    )
    assert plot.read_bytes().startswith(PNG)
    auto = cli("cluster", "--input", str(texts), "--json").json_lines()[0]
    assert auto["chosen_by"] == "silhouette" and auto["k"] >= 2


def test_eval_with_confusion_matrix(seeded: CLI, tmp_path: Path) -> None:
    image = tmp_path / "confusion.png"
    r = seeded("eval", "--json", "--confusion", str(image))
    assert r.code == 0, r.err
    (ev,) = r.json_lines()
    assert ev["strategy"] == "leave-one-out" and ev["examples"] == 24
    assert ev["accuracy"] > 0.5  # chance is 1/3
    assert set(ev["labels"]) == {"instruction", "request", "opinion"}
    assert sum(map(sum, ev["confusion"]["matrix"])) == 24
    assert image.read_bytes().startswith(PNG)


def test_eval_reports_the_calibration_error(seeded: CLI) -> None:
    (ev,) = seeded("eval", "--json").json_lines()
    assert 0.0 <= ev["ece"] <= 1.0 and ev["target_coverage"] == Settings().target_coverage
    plain = seeded("eval")
    assert f"calibration error (ECE, 10 bins) {ev['ece']:.3f}" in plain.out


# -- bad input: one line on stderr, exit 1, nothing written ------------------------------------


def _one_line_error(r: Run, *fragments: str) -> None:
    assert r.code != 0
    assert "Traceback" not in r.err
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_empty_text_is_refused(seeded: CLI) -> None:
    _one_line_error(seeded("classify", "   "), "empty")
    _one_line_error(seeded("labels", "add", "bug", ""), "no text")


def test_long_text_is_truncated_with_a_warning(seeded: CLI) -> None:
    start = "Please restart the server. "
    r = seeded("classify", "--json", start + "word " * 600)
    assert r.code == 0
    (result,) = r.json_lines()
    # What the model reads is mostly "word word …": nearest to the instructions, but too unlike
    # any example of the set to be called one.
    assert result["label"] is None
    assert result["best_label"] == "instruction"
    assert result["reason"]
    assert result["text"].startswith(start)
    assert "warning:" in r.err and "256" in r.err
    # Only the start is read, so 300 words more change nothing.
    (longer,) = seeded("classify", "--json", start + "word " * 900).json_lines()
    assert longer["scores"] == result["scores"]


def test_csv_without_columns_changes_nothing(seeded: CLI, tmp_path: Path) -> None:
    before = seeded("labels", "export").out
    bad = tmp_path / "bad.csv"
    bad.write_text("message,category\nhello,greeting\n", encoding="utf-8")
    _one_line_error(seeded("labels", "import", str(bad)), "'text' and 'label'")
    half = tmp_path / "half.csv"
    half.write_text("text,label\nfine row,instruction\n,instruction\n", encoding="utf-8")
    _one_line_error(seeded("labels", "import", str(half)), "row 3")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    _one_line_error(seeded("labels", "import", str(binary)))
    assert seeded("labels", "export").out == before


def test_missing_file(cli: CLI) -> None:
    _one_line_error(cli("labels", "import", "nope.csv"), "nope.csv")
    _one_line_error(cli("classify", "--input", "nope.csv"), "nope.csv")


def test_unknown_set_and_label(seeded: CLI) -> None:
    _one_line_error(seeded("classify", "--set", "ghost", "hello there"), "ghost")
    _one_line_error(seeded("labels", "list", "ghost-label"), "ghost-label")
    _one_line_error(seeded("labels", "remove", "--label", "ghost-label"), "ghost-label")
    _one_line_error(seeded("labels", "remove", "999999"), "999999")


def test_fewer_than_two_labels(cli: CLI) -> None:
    cli("labels", "add", "only", "the only label there is")
    _one_line_error(cli("classify", "hello"), "two labels")
    _one_line_error(cli("eval"), "two labels")


def test_unreachable_database(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://gembot:hunter2@127.0.0.1:1/gembot")
    r = cli("labels", "sets")
    _one_line_error(r, "127.0.0.1")
    assert "hunter2" not in r.err


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    # The installed entry point, in a fresh process: exit status and stderr as a user sees them.
    assert shutil.which("gembot", path=str(Path(sys.executable).parent)), (
        "install Gembot: pip install -e '.[dev]'"
    )
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "HOME": str(tmp_path),
    }
    ok = subprocess.run(["gembot", "labels", "sets"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "no label sets yet" in ok.stdout
    bad = subprocess.run(
        ["gembot", "labels", "import", "missing.csv"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: no such file: missing.csv"
