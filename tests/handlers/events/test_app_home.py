"""App Home through the running HTTP app: `app_home_opened` → `views.publish`."""

from __future__ import annotations

from typing import Any

from tests.support.label_support import seed, texts_of
from tests.support.slack_fixtures import BotServer, MakeBotServer


def open_home(server: BotServer, *, user: str = "U0HUMAN", tab: str = "home") -> dict[str, Any]:
    """Send `app_home_opened` for `user` and return the view published for them."""
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1.2"}
    reply = server.send_event(event)
    assert reply.status == 200 and reply.elapsed < 3.0
    (published,) = server.slack.wait_for("views.publish")
    server.settle()
    assert published.params["user_id"] == user
    view: dict[str, Any] = published.params["view"]
    return view


def test_home_lists_sets_with_counts_and_latest_evaluation(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"], "meh": ["a day"]})
    assert bot_server.deps is not None
    store = bot_server.deps.store
    version = store.get_set(bot_server.team, "default").version
    for accuracy in (0.5, 0.875):  # the newest one is shown
        store.record_evaluation(
            bot_server.team,
            "default",
            set_version=version,
            method="logreg",
            strategy="leave-one-out",
            n=8,
            accuracy=accuracy,
            coverage=1.0,
        )
    view = open_home(bot_server)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = texts_of(view)
    assert "*default* — 2 labels, 8 examples\nbilling 4 · shipping 4" in shown
    assert "Latest evaluation: *88%* accuracy on 8 examples · logreg · leave-one-out · <!date^" in shown
    assert "50%" not in shown
    assert "Coverage: answers *100%* of its held-out examples (not sure of the rest)" in shown
    assert "*mood* — 3 labels, 3 examples\nhappy 1 · meh 1 · sad 1" in shown
    assert "Not evaluated yet: `/label eval set:mood`" in shown
    assert "`/classify TEXT`" in shown and "Add as label example" in shown
    assert "`--team T0STANDIN`" in shown


def test_home_shows_how_often_a_set_answers_and_how_often_it_is_right_then(bot_server: BotServer) -> None:
    seed(bot_server)
    seed(bot_server, "mood", labels={"happy": ["a great day"], "sad": ["an awful day"]})
    assert bot_server.deps is not None
    store = bot_server.deps.store
    for name, coverage, answered in (("default", 0.95, 0.9), ("mood", 0.0, None)):
        store.record_evaluation(
            bot_server.team,
            name,
            set_version=store.get_set(bot_server.team, name).version,
            method="centroid",
            strategy="leave-one-out",
            n=8,
            accuracy=0.855,
            coverage=coverage,
            answered_accuracy=answered,
        )
    view = open_home(bot_server)
    default, mood = [
        b["elements"][0]["text"]
        for b in view["blocks"]
        if b["type"] == "context" and "Latest evaluation" in b["elements"][0]["text"]
    ]
    assert default.endswith(
        "\nCoverage: answers *95%* of its held-out examples (not sure of the rest), right on *90%* of those"
    )
    assert mood.endswith(
        "\nCoverage: *0%* — at its thresholds it is not sure of any of its held-out examples"
    )


def test_home_shows_the_coverage_a_label_eval_measured(bot_server: BotServer) -> None:
    seed(bot_server)
    reply = bot_server.send_command("/label", "eval")
    assert reply.status == 200 and reply.body == ""
    bot_server.slack.wait_for("chat.update")
    bot_server.slack.wait_for("files.completeUploadExternal")
    bot_server.settle()
    assert bot_server.deps is not None
    recorded = bot_server.deps.store.latest_evaluations(bot_server.team)["default"]
    assert recorded.coverage > 0 and recorded.answered_accuracy is not None
    bot_server.slack.clear_calls()
    shown = texts_of(open_home(bot_server))
    assert recorded.ece is not None
    assert (
        f"Coverage: answers *{recorded.coverage:.0%}* of its held-out examples (not sure of the rest), "
        f"right on *{recorded.answered_accuracy:.0%}* of those; its stated confidence is off by "
        f"*{recorded.ece:.0%}* on average (ECE)"
    ) in shown


def test_an_evaluation_of_an_older_version_is_marked(bot_server: BotServer) -> None:
    seed(bot_server)
    assert bot_server.deps is not None
    bot_server.deps.store.record_evaluation(
        bot_server.team,
        "default",
        set_version=1,
        method="centroid",
        strategy="leave-one-out",
        n=3,
        accuracy=1.0,
        coverage=1.0,
    )
    assert "(the set has changed since)" in texts_of(open_home(bot_server))


def test_a_new_workspace_gets_the_empty_state(bot_server: BotServer) -> None:
    shown = texts_of(open_home(bot_server))
    assert "No label sets yet. Start one by adding examples: `/label add LABEL: TEXT`" in shown
    assert "`/classify TEXT`" in shown


def test_the_messages_tab_publishes_nothing(bot_server: BotServer) -> None:
    reply = bot_server.send_event(
        {"type": "app_home_opened", "user": "U0HUMAN", "channel": "D0HOME", "tab": "messages"}
    )
    assert reply.status == 200
    bot_server.settle()
    assert not bot_server.slack.calls("views.publish")


def test_set_names_and_labels_cannot_ping_anyone(bot_server: BotServer) -> None:
    seed(bot_server, "<!channel>", labels={"<@U999>": ["a great day"], "@here": ["an awful day"]})
    shown = texts_of(open_home(bot_server))
    assert "<!channel>" not in shown and "<@U999>" not in shown and "@here" not in shown
    assert "*&lt;!channel&gt;*" in shown and "&lt;@U999&gt; 1" in shown


def test_home_on_postgres_too(make_bot_server: MakeBotServer, database_url: str) -> None:
    server = make_bot_server(database_url=database_url)
    seed(server)
    assert "*default* — 2 labels, 8 examples" in texts_of(open_home(server))


def test_home_shows_the_share_of_rated_answers_marked_good_per_model(bot_server: BotServer) -> None:
    assert bot_server.deps is not None
    store, team = bot_server.deps.store, bot_server.team

    def answered(model: str, *goods: bool, workspace: str = team) -> int:
        answer = store.record_answer(workspace, "C0GENERAL", message_ts=None, model=model)
        for n, good in enumerate(goods):
            store.rate_answer(workspace, answer, f"U{n}", good=good)
        return answer

    for _ in range(4):
        answered("gemini-2.5-flash", True)
    answered("gemini-2.5-flash", False)
    answered("gemini-2.5-flash")  # nobody rated it: not in the count
    answered("gemini-2.5-pro", True, False)  # a tie is not "good"
    answered("gemini-2.5-pro", True, True, workspace="T0ELSEWHERE")  # another workspace's
    view = open_home(bot_server)
    assert len(view["blocks"]) <= 100
    shown = texts_of(view)
    assert (
        "`gemini-2.5-flash`: 4 of 5 answers marked good (80%)\n"
        "`gemini-2.5-pro`: 0 of 1 answer marked good (0%)"
    ) in shown
    assert "of the answers someone pressed *Good* or *Not good* under" in shown
    assert shown.index("Answers") < shown.index("How to")


def test_home_without_feedback_says_how_to_give_it(bot_server: BotServer) -> None:
    shown = texts_of(open_home(bot_server))
    assert "No feedback on answers in the last 30 days yet" in shown
    assert "marked good" not in shown
