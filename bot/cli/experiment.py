"""`gembot experiment`: run a locked prompt over a table on several models, then score and compare.

`run` checks everything first (template against the columns, models against `models.list`,
the schema, the score mode), then runs with a progress bar; Ctrl-C keeps what has come back and
`resume ID` carries on. `list`, `show`, `compare`, `export` and `rerun` read what is stored.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.context import Context
from bot.cli.output import ProgressBar, emit_json, fields_json, read_text_file, write_atomic, write_output
from core.bulk_runner import JobInterrupted, LeaseLost
from core.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from core.experiments.estimates import Estimate
    from core.experiments.runner import ExperimentRunner, Progress
    from core.experiments.spec import ExperimentSpec
    from core.store import ExperimentRecord, JobRecord


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    experiment = commands.add_parser(
        "experiment", help="run one prompt over a CSV or JSONL file on several models, score and compare"
    )
    verbs = experiment.add_subparsers(dest="verb", required=True, metavar="VERB")
    team = argparse.ArgumentParser(add_help=False, parents=[common])
    team.add_argument(
        "--team", help="workspace (team) id the experiments belong to; default $GEMBOT_TEAM or 'local'"
    )
    shown = argparse.ArgumentParser(add_help=False)
    bars = shown.add_mutually_exclusive_group()
    bars.add_argument("--progress", action="store_true", help="always show the progress bar on stderr")
    bars.add_argument("--quiet", action="store_true", help="never show the progress bar")
    again = argparse.ArgumentParser(add_help=False, parents=[team, shown])
    again.add_argument(
        "--fresh", action="store_true", help="ask Gemini again instead of using cached answers"
    )
    again.add_argument("--dry-run", action="store_true", help="show requests, tokens and cost; send nothing")

    run = verbs.add_parser("run", parents=[again], help="run a prompt template over every row, on each model")
    run.add_argument("--prompt", required=True, help="the template; {column} is replaced by the row's cell")
    run.add_argument("--input", "-i", required=True, help="a CSV file with a header row, or a .jsonl file")
    run.add_argument("--model", required=True, help="one model or several, comma-separated (lightest first)")
    run.add_argument("--system", help="system instruction sent with every request")
    run.add_argument("--temperature", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--max-output-tokens", type=int)
    run.add_argument("--thinking-budget", type=int, help="thinking tokens (0 turns thinking off, -1 dynamic)")
    run.add_argument("--schema", help="a JSON Schema file the answers must follow (JSON output)")
    run.add_argument("--expected", help="the column holding the right answer, for --score")
    run.add_argument(
        "--score",
        help="exact | contains | regex:PATTERN | json:FIELD | judge:RUBRIC (default: exact with --expected)",
    )
    run.add_argument("--judge-model", help="model that grades for judge:RUBRIC (default $GEMBOT_JUDGE_MODEL)")
    run.add_argument(
        "--batch", action="store_true", help="send through the Gemini Batch API: half price, hours"
    )
    run.add_argument("--name", help="a name to find the experiment by (default: the input file's name)")
    run.set_defaults(run=run_experiment)

    resume = verbs.add_parser("resume", parents=[team, shown], help="carry on an interrupted experiment")
    resume.add_argument("id", type=int)
    resume.add_argument(
        "--fresh", action="store_true", help="ask Gemini again instead of using cached answers"
    )
    resume.set_defaults(run=resume_experiment)

    rerun = verbs.add_parser(
        "rerun", parents=[again], help="run a stored experiment's locked configuration again"
    )
    rerun.add_argument("id", type=int)
    rerun.set_defaults(run=rerun_experiment)

    listing = verbs.add_parser("list", parents=[team], help="the workspace's experiments, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(run=list_experiments)

    show = verbs.add_parser(
        "show", parents=[team], help="one experiment's configuration and per-model figures"
    )
    show.add_argument("id", type=int)
    show.add_argument("--plot", help="write a chart of the figures to this PNG file")
    show.set_defaults(run=show_experiment)

    compare = verbs.add_parser(
        "compare", parents=[team], help="per-model figures of several experiments, side by side"
    )
    compare.add_argument("ids", type=int, nargs="+", metavar="ID")
    compare.add_argument("--plot", help="write a chart of the comparison to this PNG file")
    compare.set_defaults(run=compare_experiments)

    export = verbs.add_parser(
        "export", parents=[team], help="every row's prompt, answer, score, tokens, latency"
    )
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")
    export.set_defaults(run=export_experiment)


def _runner(ctx: Context) -> ExperimentRunner:
    from core.experiments.runner import ExperimentRunner

    return ExperimentRunner(ctx.store, ctx.settings, ctx.gemini)


def _spec(ctx: Context) -> ExperimentSpec:
    from core.experiments.checks import read_schema
    from core.experiments.runner import parse_models
    from core.experiments.spec import ExperimentSpec, Generation, Scoring

    a = ctx.args
    schema = read_schema(read_text_file(a.schema), source=a.schema) if a.schema else None
    scoring = Scoring.parse(
        a.score, expected=a.expected, judge_model=a.judge_model or ctx.settings.judge_model
    )
    return ExperimentSpec(
        template=a.prompt,
        models=parse_models(a.model),
        generation=Generation(
            system=a.system or None,
            temperature=a.temperature,
            seed=a.seed,
            max_output_tokens=a.max_output_tokens,
            thinking_budget=a.thinking_budget,
            response_schema=schema,
        ),
        scoring=scoring,
        batch=a.batch,
    )


def run_experiment(ctx: Context) -> int:
    from core.experiments.cases import read_cases
    from core.experiments.checks import check_experiment
    from core.experiments.runner import KIND_CLI

    a = ctx.args
    spec = _spec(ctx)
    cases = read_cases(
        read_text_file(a.input),
        filename=a.input,
        max_rows=ctx.settings.max_csv_rows,
        max_chars=ctx.settings.max_text_chars,
    )
    source = Path(a.input).name
    # Everything that can be checked here is, before models.list is asked about the models.
    check_experiment(spec, cases, source=source)
    runner = _runner(ctx)
    runner.check_models(spec)
    if a.dry_run:
        return _print_estimate(runner.estimate(spec, cases, source=source), spec)
    experiment, job = runner.create(
        ctx.team, spec, cases, name=a.name or source, source=source, kind=KIND_CLI
    )
    print(
        f"experiment #{experiment.id}: {len(cases.rows):,} rows × {len(spec.models)} models", file=sys.stderr
    )
    return _run(ctx, runner, experiment, job)


def rerun_experiment(ctx: Context) -> int:
    from core.experiments.runner import KIND_CLI

    a = ctx.args
    runner = _runner(ctx)
    old = _experiment(ctx, a.id)
    _, spec, cases = runner.loaded(old.id)
    runner.check_models(spec)
    if a.dry_run:
        return _print_estimate(runner.estimate(spec, cases, source=old.source), spec)
    experiment, job = runner.create(
        ctx.team, spec, cases, name=old.name, source=old.source, kind=KIND_CLI, rerun_of=old.id
    )
    print(f"experiment #{experiment.id}: a rerun of #{old.id}", file=sys.stderr)
    return _run(ctx, runner, experiment, job)


def resume_experiment(ctx: Context) -> int:
    a = ctx.args
    experiment = _experiment(ctx, a.id)
    if experiment.state != "running":
        raise InvalidInput(f"experiment #{experiment.id} is {experiment.state}; there is nothing to resume")
    if experiment.origin != "cli":
        raise InvalidInput(f"experiment #{experiment.id} was started in Slack; Gembot's server carries it on")
    runner = _runner(ctx)
    if experiment.job_id is None:
        raise InvalidInput(
            f"experiment #{experiment.id} has lost its job; run it again with `rerun {experiment.id}`"
        )
    taken = ctx.store.jobs.claim(
        owner=runner.owner, lease_seconds=ctx.settings.job_lease_seconds, job_id=experiment.job_id
    )
    if not taken:
        raise InvalidInput(f"experiment #{experiment.id} is running in another process right now")
    return _run(ctx, runner, experiment, taken[0])


def _run(ctx: Context, runner: ExperimentRunner, experiment: ExperimentRecord, job: JobRecord) -> int:
    from core.experiments.runner import ExperimentStopped

    a = ctx.args
    bar = ProgressBar(label="requests", enabled=a.progress or (not a.quiet and sys.stderr.isatty()))

    def progress(p: Progress) -> None:
        bar.update(p.done, p.total)

    try:
        finished = runner.run(job, progress=progress, fresh=getattr(a, "fresh", False))
    except (JobInterrupted, KeyboardInterrupt):
        print(
            "interrupted: the answers so far are kept; carry on with "
            f"`gembot experiment resume {experiment.id}`",
            file=sys.stderr,
        )
        return 130
    except LeaseLost:
        print(
            f"error: another process took experiment #{experiment.id} over (this one stopped renewing "
            "its lease for too long); it carries on there",
            file=sys.stderr,
        )
        return 1
    except ExperimentStopped as exc:
        ctx.store.jobs.release(job.id, owner=runner.owner)
        print(f"error: {exc}; carry on with `gembot experiment resume {experiment.id}`", file=sys.stderr)
        return 1
    _print_summary(ctx, [finished])
    runner.finish(job)
    return 0


def _experiment(ctx: Context, experiment_id: int) -> ExperimentRecord:
    try:
        return ctx.store.experiments.get(experiment_id, team_id=ctx.team)
    except NotFound:
        raise NotFound(f"there is no experiment #{experiment_id} in workspace {ctx.team}") from None


def _print_estimate(estimate: Estimate, spec: ExperimentSpec) -> int:
    from core.experiments.summary import money

    capped = "≤" if estimate.output_capped else "~"
    for m in estimate.models:
        cached = f", {m.cached:,} from the cache" if m.cached else ""
        print(
            f"{m.model}: {m.requests:,} requests{cached}; ~{m.input_tokens:,} input and "
            f"{capped}{m.output_tokens:,} output tokens; {money(m.cost)}"
        )
    if estimate.judge_requests:
        print(f"judge {spec.scoring.judge_model}: up to {estimate.judge_requests:,} more requests")
    print(
        f"total: {estimate.requests:,} requests to send, about {money(estimate.cost)}"
        f"{' at Batch API prices' if spec.batch else ''} (output assumed at {estimate.output_guess:,} "
        "tokens a request; input counted by Gemini on a sample)"
    )
    return 0


def list_experiments(ctx: Context) -> int:
    found = ctx.store.experiments.find(team_id=ctx.team, limit=ctx.args.limit)
    if ctx.args.json:
        for e in found:
            emit_json(
                {
                    **fields_json(e, "id", "name", "rows", "origin", "created_at", "finished_at"),
                    "state": _state(ctx, e),
                }
            )
        return 0
    if not found:
        print(
            "no experiments yet: `gembot experiment run --prompt ... --input FILE --model a,b`",
            file=sys.stderr,
        )
        return 0
    for e in found:
        models = ",".join(e.spec.get("models") or [])
        print(
            f"#{e.id}\t{_state(ctx, e)}\t{e.created_at:%Y-%m-%d %H:%M}\t{e.rows:,} rows\t{models}\t{e.name}"
        )
    return 0


def _state(ctx: Context, experiment: ExperimentRecord) -> str:
    """The experiment's state, `stopped` for a running one whose job nobody holds (to `resume`)."""
    if experiment.state != "running" or experiment.job_id is None:
        return experiment.state
    job = ctx.store.jobs.get(experiment.job_id)
    lapsed = job.lease_expires_at is None or job.lease_expires_at < datetime.now(UTC)
    return "stopped" if job.state == "queued" or (job.state == "running" and lapsed) else "running"


def show_experiment(ctx: Context) -> int:
    experiment = _experiment(ctx, ctx.args.id)
    if not ctx.args.json:
        from core.experiments.spec import ExperimentSpec

        spec = ExperimentSpec.of(experiment.spec)
        print(
            f"experiment #{experiment.id} {experiment.name!r}: {experiment.state}, {experiment.rows:,} rows"
        )
        print(f"  template: {spec.template}")
        generation = {k: v for k, v in vars(spec.generation).items() if v is not None}
        print(f"  generation: {generation or 'model defaults'}; google-genai {spec.sdk}")
        if spec.scoring.mode != "none":
            scoring = spec.scoring
            judged = f", judged by {scoring.judge_model}" if scoring.mode == "judge" else ""
            argument = f":{scoring.argument}" if scoring.argument else ""
            print(f"  scoring: {scoring.mode}{argument} (expected: {scoring.expected or 'none'}{judged})")
        if experiment.error:
            print(f"  stopped: {experiment.error}")
    _print_summary(ctx, [experiment])
    return 0


def compare_experiments(ctx: Context) -> int:
    experiments = [_experiment(ctx, i) for i in dict.fromkeys(ctx.args.ids)]
    _print_summary(ctx, experiments)
    return 0


def _print_summary(ctx: Context, experiments: list[ExperimentRecord]) -> None:
    from core.experiments.pricing import Prices
    from core.experiments.spec import ExperimentSpec
    from core.experiments.summary import comparison_table, summarise

    prices = Prices.parse(ctx.settings.prices)
    rows = []
    for experiment in experiments:
        spec = ExperimentSpec.of(experiment.spec)
        results = ctx.store.experiments.results(experiment.id)
        for summary in summarise(results, scoring=spec.scoring, prices=prices, models=spec.models):
            # Models alone for one experiment; "#ID/model" when several are compared.
            rows.append((f"#{experiment.id}" if len(experiments) > 1 else "", summary))
    if ctx.args.json:
        for label, summary in rows:
            emit_json({"label": label, **summary.to_json()})
    else:
        print(comparison_table(rows))
    plot = getattr(ctx.args, "plot", None)
    if plot:
        from core.experiments.comparison_plot import comparison_plot

        write_atomic(plot, comparison_plot(rows))
        print(f"plot written to {plot}", file=sys.stderr)


def export_experiment(ctx: Context) -> int:
    from core.experiments.cases import Cases
    from core.experiments.export import export_csv, export_jsonl
    from core.experiments.pricing import Prices

    experiment = _experiment(ctx, ctx.args.id)
    results = ctx.store.experiments.results(experiment.id)
    cases = Cases.of(ctx.store.experiments.cases(experiment.id))
    write = export_jsonl if ctx.args.format == "jsonl" else export_csv
    # The input's columns ride along, so that the expected answer sits beside the score.
    text = write(results, prices=Prices.parse(ctx.settings.prices), cases=cases.rows, columns=cases.columns)
    write_output(ctx.args.output, text, wrote=f"{len(results):,} rows")
    return 0
