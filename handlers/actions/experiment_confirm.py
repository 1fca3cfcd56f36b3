"""The **Run it** / **Cancel** buttons under an experiment that waits for a confirmation (its
estimated cost is above GEMBOT_EXPERIMENT_CONFIRM_COST, or unknown; see `handlers.experiment_runs`).

Only the person who sent the file may press them; anyone else is told so privately. **Run it**
starts the experiment once (a second press, or a press after **Cancel**, does nothing: the store
starts a pending experiment only once) and the buttons' message then counts its progress;
**Cancel** ends it unrun. The buttons carry the experiment's id, which is not trusted: an id that
is not one of the workspace's experiments gets one line.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from core import daily_limits
from core.errors import NotFound
from core.store import ExperimentRecord
from handlers import experiment_runs, text
from handlers.acks import acknowledge
from handlers.deps import Deps, deps_of
from handlers.replies import Placeholder
from handlers.request import SlackRequest

GONE = ":warning: That experiment is no longer on record; send the file again."
NOT_YOURS = ":no_entry: Only {who}, who sent the file, can run or cancel this experiment."
ALREADY = ":information_source: Experiment #{id} is {state}, so there is nothing to cancel."


def register(app: App) -> None:
    """A press is acknowledged at once; the run (or the cancellation) happens in a lazy listener."""
    app.action(experiment_runs.RUN_ACTION)(ack=acknowledge, lazy=[run_experiment])
    app.action(experiment_runs.CANCEL_ACTION)(ack=acknowledge, lazy=[cancel_experiment])


def run_experiment(body: dict[str, Any], context: BoltContext) -> None:
    """**Run it**: start the experiment and run it, charged to the person who sent the file."""
    deps, request = deps_of(context), SlackRequest.of_action(body, context)
    with request.replier.reporting_errors():
        experiment = _pressed(deps, request, body)
        if experiment is None:
            return
        with daily_limits.acting_for(deps.meter, request.actor):
            experiment_runs.start_confirmed(deps, request, experiment)


def cancel_experiment(body: dict[str, Any], context: BoltContext) -> None:
    """**Cancel**: end the pending experiment unrun, and say so in place of the buttons."""
    deps, request = deps_of(context), SlackRequest.of_action(body, context)
    replier = request.replier
    with replier.reporting_errors():
        experiment = _pressed(deps, request, body)
        if experiment is None:
            return
        if not deps.store.experiments.cancel(experiment.id):
            state = deps.store.experiments.get(experiment.id).state
            replier.ephemeral(ALREADY.format(id=experiment.id, state=text.escape(state)))
            return
        said = f"Cancelled: experiment #{experiment.id} was not run, and nothing was sent to Gemini."
        Placeholder(replier, ts=request.message_ts, channel=request.channel).update(
            said, blocks=[text.context(f":no_entry_sign: {said}")]
        )


def _pressed(deps: Deps, request: SlackRequest, body: dict[str, Any]) -> ExperimentRecord | None:
    """The experiment the pressed button names, when it is the workspace's and the presser sent
    it; otherwise the presser is told why privately, and None."""
    action = (body.get("actions") or [{}])[0]
    value = str(action.get("value") or "")
    replier = request.replier
    if not value.isdigit() or len(value) > 18:
        replier.ephemeral(GONE)
        return None
    try:
        experiment = deps.store.experiments.get(int(value), team_id=request.workspace)
    except NotFound:
        replier.ephemeral(GONE)
        return None
    if not request.user or experiment.created_by != request.user:
        who = f"<@{experiment.created_by}>" if experiment.created_by else "the person"
        replier.ephemeral(NOT_YOURS.format(who=who))
        return None
    return experiment
