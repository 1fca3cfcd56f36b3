"""Prompt experiments sent by DM: a CSV (or JSONL) file with `run: <template>` runs on Gemini.

The message names the template on a line starting `run:` (it goes on to the end of its paragraph,
or to the next line starting with a key), and optionally `models: a, b` (default
GEMBOT_GENERATION_MODEL), `expected: COLUMN` and `score: MODE` as the command line's
`--expected` and `--score` (the judge is GEMBOT_JUDGE_MODEL). Everything is checked before a
single generation request is sent, each failure one line in the thread with nothing stored: the
template against the file's columns, the file itself, the models against `models.list`, the
scoring. Then the estimate (requests, tokens, cost) goes into the thread, and the run starts at
once, or, above GEMBOT_EXPERIMENT_CONFIRM_COST or when a model has no price, waits for **Run it**
(`handlers.actions.experiment_confirm`).

A run is a stored job (kind `experiment_slack`) charged to the person who sent the file: one
message in the thread counts its requests, then the results CSV, the comparison table and a chart
arrive. A process that stops gives the job back and the next one carries on in the same message
(`resume`). A spent quota or usage limit ends the run with the reason and the results so far.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock

from core import daily_limits
from core.bulk_runner import MAX_ATTEMPTS, JobGaveUp, JobInterrupted
from core.errors import GembotError, InvalidInput
from core.store import JobRecord, LeaseLost
from handlers import attachments, downloads, text
from handlers.bulk import PROGRESS_TS, REPLY_TO, paused_because, reply_to_of
from handlers.deps import Deps
from handlers.replies import Placeholder, Replier
from handlers.request import SlackRequest
from handlers.text import Block, plural

if TYPE_CHECKING:
    from core.experiments.cases import Cases
    from core.experiments.estimates import Estimate
    from core.experiments.runner import Progress
    from core.experiments.spec import ExperimentSpec
    from core.store import ExperimentRecord

log = logging.getLogger(__name__)

#: The buttons under an experiment that waits for a confirmation (`handlers.actions.experiment_confirm`).
RUN_ACTION = "experiment_run"
CANCEL_ACTION = "experiment_cancel"
BLOCK_PREFIX = "experiment_confirm:"
#: Progress messages per run at most, so that chat.update stays well inside Slack's rate limit.
MAX_UPDATES = 20
#: The comparison table goes up as a file rather than a message beyond this many characters.
TABLE_LIMIT = 2_900

# A key at the start of a line: `run:`, `models:` (or `model:`), `expected:`, `score:`.
_KEY = re.compile(r"^[ \t>*_]*(run|models?|expected|score)[*_]*[ \t]*:[*_]*[ \t]?(.*)$", re.IGNORECASE)
_JSONL = (".jsonl", ".ndjson")
# The command line's words in the core's sentences, and what they are called in a DM.
_SLACK_WORDS = (
    ("(--model a,b)", "(`models: a, b`)"),
    ("in --model", "in `models:`"),
    ("--expected COLUMN", "`expected: COLUMN`"),
    ("--expected", "`expected:`"),
    ("--score", "`score:`"),
)

NEED_A_FILE = "Attach the CSV or JSONL file to the message that says `run:`, and I'll run the prompt over it."
ONE_FILE = "Send one CSV or JSONL file with `run:`, not {count}: an experiment runs over one table."


@dataclass(frozen=True)
class RunRequest:
    """What a `run:` message asks: the template, the models (None: the default), the scoring."""

    template: str
    models: str | None = None
    expected: str | None = None
    score: str | None = None


def asks_for_a_run(message: str) -> bool:
    """Whether a line of `message` starts with `run:`."""
    return any((m := _KEY.match(line)) and m.group(1).lower() == "run" for line in message.splitlines())


def is_table(file: Mapping[str, Any]) -> bool:
    """Whether `file` is one an experiment reads: a CSV, or a `.jsonl`/`.ndjson` file."""
    return attachments.is_csv(file) or downloads.file_name(file).lower().endswith(_JSONL)


def parse_request(message: str) -> RunRequest:
    """The keys of a `run:` message (see the module doc); InvalidInput for a key given twice or an
    empty template. The template is read as people see it (`text.plain`), a code span's backticks
    taken off."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in message.splitlines():
        match = _KEY.match(line)
        if match:
            key = match.group(1).lower()
            key = "models" if key == "model" else key
            if key in found:
                raise InvalidInput(f"`{key}:` is given twice; say it once")
            found[key] = [match.group(2)]
            current = key if key == "run" else None
        elif current == "run":
            if not line.strip() and any(part.strip() for part in found["run"]):
                current = None  # the template's paragraph has ended
            else:
                found["run"].append(line)
    template = _unquoted(text.plain("\n".join(found.get("run", [])).strip()))
    if not template:
        raise InvalidInput("the `run:` line has no prompt template; write it after `run:`")

    def value(key: str) -> str | None:
        raw = text.plain(" ".join(found.get(key, [])))
        return raw.strip("`'\" ") or None

    return RunRequest(template, models=value("models"), expected=value("expected"), score=value("score"))


def _unquoted(template: str) -> str:
    for fence in ("```", "`"):
        if len(template) > 2 * len(fence) and template.startswith(fence) and template.endswith(fence):
            return template[len(fence) : -len(fence)].strip()
    return template


def slack_words(exc: InvalidInput) -> InvalidInput:
    """The core's sentence with the command line's flags named as the keys of a DM."""
    sentence = str(exc)
    for cli, slack in _SLACK_WORDS:
        sentence = sentence.replace(cli, slack)
    return InvalidInput(sentence)


# -- from the message to a run ------------------------------------------------------------------------


def handle(deps: Deps, request: SlackRequest, *, file: Mapping[str, Any], message: str) -> None:
    """Check what `message` asks of `file`, post the estimate, then run it or ask first; run inside
    `request.replier.reporting_errors()` and `daily_limits.acting_for` the requester."""
    from core.experiments.cases import read_cases
    from core.experiments.checks import check_experiment

    replier, settings = request.replier, deps.settings
    name = downloads.file_name(file)
    working = replier.working(f"Checking {text.escape(name)} before running anything…")
    try:
        spec = _spec(deps, parse_request(message))
        deps.require_gemini()
        content = attachments.fetch_text(request.client, file, token=request.token)
        cases = read_cases(
            content, filename=name, max_rows=settings.max_csv_rows, max_chars=settings.max_text_chars
        )
        check_experiment(spec, cases, source=name)
        deps.experiments.check_models(spec)
        estimate = deps.experiments.estimate(spec, cases, source=name)
    except InvalidInput as exc:
        raise slack_words(exc) from None
    said = estimate_text(estimate, spec, name=name, rows=len(cases.rows))
    working.update(said, blocks=text.sections(said))
    replier.placeholder = None
    if needs_confirmation(estimate, limit=settings.experiment_confirm_cost):
        _ask_first(deps, request, spec, cases, name=name, estimate=estimate)
    else:
        _start_now(deps, request, spec, cases, name=name)


def _spec(deps: Deps, asked: RunRequest) -> ExperimentSpec:
    from core.experiments.cases import Template
    from core.experiments.runner import parse_models
    from core.experiments.spec import ExperimentSpec, Scoring

    scoring = Scoring.parse(asked.score, expected=asked.expected, judge_model=deps.settings.judge_model)
    models = parse_models(asked.models) if asked.models else (deps.settings.generation_model,)
    spec = ExperimentSpec(template=asked.template, models=models, scoring=scoring)
    Template(spec.template)  # no placeholder, a lone brace: said before the file is fetched
    return spec


def needs_confirmation(estimate: Estimate, *, limit: float) -> bool:
    """Whether a run waits for **Run it**: its estimated cost is above `limit`, or unknown."""
    cost = estimate.cost
    return cost is None or cost > limit


def estimate_text(estimate: Estimate, spec: ExperimentSpec, *, name: str, rows: int) -> str:
    """The dry run as mrkdwn: per model, the judge, the total."""
    from core.experiments.summary import money

    lines = [f"*{text.escape(name)}*: {plural(rows, 'row')} × {plural(len(spec.models), 'model')}."]
    capped = "≤" if estimate.output_capped else "~"
    for m in estimate.models:
        cached = f", {m.cached:,} from the cache" if m.cached else ""
        lines.append(
            f"• `{m.model}`: {plural(m.requests, 'request')}{cached}; ~{m.input_tokens:,} input and "
            f"{capped}{m.output_tokens:,} output tokens; {money(m.cost)}"
        )
    if estimate.judge_requests:
        lines.append(f"• judge `{spec.scoring.judge_model}`: up to {estimate.judge_requests:,} more requests")
    lines.append(
        f"Estimate: {plural(estimate.requests, 'request')} to send, about {money(estimate.cost)} "
        f"(output assumed at {estimate.output_guess:,} tokens a request; input counted by Gemini "
        "on a sample)."
    )
    return "\n".join(lines)


def confirmation_blocks(experiment_id: int, question: str) -> list[Block]:
    """The question and the **Run it** / **Cancel** buttons of a pending experiment."""
    value = str(experiment_id)
    buttons = ActionsBlock(
        block_id=f"{BLOCK_PREFIX}{experiment_id}",
        elements=[
            ButtonElement(text="Run it", action_id=RUN_ACTION, value=value, style="primary"),
            ButtonElement(text="Cancel", action_id=CANCEL_ACTION, value=value),
        ],
    )
    return [SectionBlock(text=question).to_dict(), buttons.to_dict()]


def _ask_first(
    deps: Deps, request: SlackRequest, spec: ExperimentSpec, cases: Cases, *, name: str, estimate: Estimate
) -> None:
    from core.experiments.runner import KIND_SLACK
    from core.experiments.summary import money

    experiment = deps.experiments.create_pending(
        request.workspace, spec, cases, name=name, source=name, kind=KIND_SLACK, created_by=request.user
    )
    limit = money(deps.settings.experiment_confirm_cost)
    if estimate.cost is None:
        unpriced = ", ".join(f"`{m.model}`" for m in estimate.models if m.cost is None)
        why = f"I have no price for {unpriced}, so I can't tell what it costs"
    else:
        why = (
            f"It is estimated at about {money(estimate.cost)}, above {limit} (GEMBOT_EXPERIMENT_CONFIRM_COST)"
        )
    question = f":question: {why}. Run experiment #{experiment.id}?"
    request.replier.post(text.fallback(question), blocks=confirmation_blocks(experiment.id, question))


def _start_now(deps: Deps, request: SlackRequest, spec: ExperimentSpec, cases: Cases, *, name: str) -> None:
    from core.experiments.runner import KIND_SLACK

    replier = request.replier
    working = replier.working(f"Starting the experiment on {text.escape(name)}…")
    _, job = deps.experiments.create(
        request.workspace,
        spec,
        cases,
        name=name,
        source=name,
        kind=KIND_SLACK,
        created_by=request.user,
        # Where the answer goes, so that whichever process finishes the job answers in this thread,
        # updating this progress message.
        parameters={REPLY_TO: request.reply_to().to_json(), PROGRESS_TS: working.ts},
    )
    run_job(deps, replier, job, working)


def start_confirmed(deps: Deps, request: SlackRequest, experiment: ExperimentRecord) -> None:
    """Start a pending experiment from its **Run it** button, in the buttons' message, which then
    counts its progress; nothing when it was started or cancelled already."""
    from core.experiments.runner import KIND_SLACK

    replier = request.replier
    working = Placeholder(replier, ts=request.message_ts, channel=request.channel)
    job = deps.experiments.start(
        experiment.id,
        kind=KIND_SLACK,
        parameters={REPLY_TO: request.reply_to().to_json(), PROGRESS_TS: request.message_ts},
    )
    if job is None:
        return
    replier.placeholder = working
    started = f"Started experiment #{experiment.id}…"
    working.update_quietly(started, blocks=[text.context(f":hourglass_flowing_sand: {started}")])
    run_job(deps, replier, job, working)


# -- running -------------------------------------------------------------------------------------------


def resume(deps: Deps, job: JobRecord, *, client: WebClient, logger: logging.Logger | None = None) -> None:
    """Carry on with an experiment another process left off, in the thread it was asked in,
    updating the same progress message; its requests are charged to whoever sent the file."""
    to = reply_to_of(job)
    replier = Replier(client, to, logger=logger)
    with replier.reporting_errors():
        experiment = deps.store.experiments.get(int(job.parameters["experiment"]))
        actor = daily_limits.Actor(job.team_id, experiment.created_by or to.user)
        with daily_limits.acting_for(deps.meter, actor):
            ts = job.parameters.get(PROGRESS_TS)
            working = Placeholder(replier, ts=str(ts), channel=to.channel) if ts else replier.working()
            replier.placeholder = working
            _show_progress(working, experiment, job.rows_done, job.rows_total, eta=None, again=True)
            run_job(deps, replier, job, working)


def run_job(deps: Deps, replier: Replier, job: JobRecord, working: Placeholder) -> None:
    """Run the job's requests not done yet, counting them in `working`, then deliver the results.

    A process that is stopping gives the job back and says so; a spent quota or usage limit marks
    the experiment failed and delivers what came back; any other failure (a job taken over more
    than MAX_ATTEMPTS times among them) marks it failed and is raised for the replier.
    """
    from core.experiments.runner import ExperimentStopped

    runner = deps.experiments
    experiment = deps.store.experiments.get(int(job.parameters["experiment"]))
    step = max(1, math.ceil(job.rows_total / MAX_UPDATES))
    next_update = [(job.rows_done // step + 1) * step]

    def progress(p: Progress) -> None:
        if p.done < p.total and p.done >= next_update[0]:
            next_update[0] = (p.done // step + 1) * step
            _show_progress(working, experiment, p.done, p.total, eta=p.eta)

    try:
        if job.attempts > MAX_ATTEMPTS:
            # A run that takes its process down every time must not go round for ever.
            raise JobGaveUp(
                f"experiment #{experiment.id} was interrupted {MAX_ATTEMPTS} times before it could "
                "finish, so I gave up on it: send the file again"
            )
        finished = runner.run(job, progress=progress)
    except JobInterrupted as stop:
        paused = (
            f"Paused experiment #{experiment.id} at {stop.rows_done:,} of {stop.rows_total:,} requests"
            f"{paused_because(stop)}."
        )
        working.update_quietly(paused, blocks=[text.context(f":pause_button: {paused}")])
        return
    except LeaseLost:
        replier.log.info("experiment job #%d was taken over by another process", job.id)
        return
    except ExperimentStopped as exc:
        give_up(deps, job, exc.reason)
        stopped = (
            f":warning: Experiment #{experiment.id} stopped at {exc.done:,} of {exc.total:,} requests: "
            f"{text.neutralise(exc.reason)}. The results so far are below."
        )
        working.update_quietly(stopped, blocks=[text.section(stopped)])
        _deliver(deps, replier, experiment, plot=False)
        return
    except Exception as exc:
        give_up(deps, job, str(exc) or type(exc).__name__)
        raise
    done = (
        f":white_check_mark: Experiment #{finished.id} on {text.escape(finished.source)} is done: "
        f"{plural(finished.rows, 'row')} × {plural(len(finished.spec.get('models') or []), 'model')}."
    )
    working.update(
        done,
        blocks=[
            text.section(done),
            text.context("Below: every answer as CSV, the comparison table and a chart of it."),
        ],
    )
    _deliver(deps, replier, finished, plot=True)
    # Only now: a process that dies before this runs the job again, which asks nothing twice.
    runner.finish(job)


def give_up(deps: Deps, job: JobRecord, error: str) -> None:
    """Mark an experiment's job failed, and the experiment with it, saying why (`error`)."""
    deps.jobs.fail(job, error)
    experiment_id = int(job.parameters["experiment"])
    try:
        deps.store.experiments.finish(experiment_id, state="failed", error=error)
    except GembotError as exc:  # the database away: the job's own failure is what matters
        log.warning("could not mark experiment #%d failed: %s", experiment_id, exc)


def _deliver(deps: Deps, replier: Replier, experiment: ExperimentRecord, *, plot: bool) -> None:
    """Upload the results CSV, post the comparison table, and (when `plot`) upload its chart."""
    from core.experiments.cases import Cases
    from core.experiments.export import export_csv
    from core.experiments.pricing import Prices
    from core.experiments.spec import ExperimentSpec
    from core.experiments.summary import comparison_table, summarise

    store = deps.store.experiments
    prices = Prices.parse(deps.settings.prices)
    spec = ExperimentSpec.of(experiment.spec)
    results = store.results(experiment.id)
    cases = Cases.of(store.cases(experiment.id))
    stem = re.sub(r"\.(csv|jsonl|ndjson)$", "", experiment.source, flags=re.IGNORECASE) or "experiment"
    stem = f"{stem}-experiment-{experiment.id}"
    replier.upload(
        export_csv(results, prices=prices, cases=cases.rows, columns=cases.columns),
        filename=f"{stem}.csv",
        title=f"Experiment #{experiment.id}: {plural(len(results), 'result')}",
    )
    rows = [("", s) for s in summarise(results, scoring=spec.scoring, prices=prices, models=spec.models)]
    table = comparison_table(rows)
    block = f"```\n{text.escape(table)}```"
    if len(block) <= TABLE_LIMIT:
        replier.post(text.fallback(f"Experiment #{experiment.id}, per model"), blocks=[text.section(block)])
    else:
        replier.upload(table, filename=f"{stem}-table.txt", title=f"Experiment #{experiment.id}, per model")
    if plot:
        from core.experiments.comparison_plot import comparison_plot  # matplotlib: imported when drawn

        replier.upload(
            comparison_plot(rows), filename=f"{stem}.png", title=f"Experiment #{experiment.id}, per model"
        )


def _show_progress(
    working: Placeholder,
    experiment: ExperimentRecord,
    done: int,
    total: int,
    *,
    eta: float | None,
    again: bool = False,
) -> None:
    verb = "Carrying on with" if again else "Running"
    left = f", {_duration(eta)} left" if eta is not None else ""
    said = (
        f"{verb} experiment #{experiment.id} on {text.escape(experiment.source)}: "
        f"{done:,} of {total:,} requests ({done * 100 // max(total, 1)}%){left}…"
    )
    working.update_quietly(said, blocks=[text.context(f":hourglass_flowing_sand: {said}")])


def _duration(seconds: float) -> str:
    """`about 40 s`, `about 3 min`, `about 2 h 5 min`."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"
