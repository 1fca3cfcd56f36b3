"""`gembot ask` and `gembot models`: Gemini itself on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.context import Context
from bot.cli.output import emit_json, read_text_file


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ask = commands.add_parser("ask", parents=[common], help="ask Gemini a question, optionally about images")
    ask.add_argument("prompt", metavar="PROMPT", help="the question (- reads it from standard input)")
    ask.add_argument(
        "--image", action="append", default=[], metavar="PATH", help="an image to ask about (repeatable)"
    )
    ask.add_argument("--model", help="the model to ask (default: $GEMBOT_GENERATION_MODEL)")
    ask.add_argument("--system", metavar="TEXT", help="a system instruction")
    ask.set_defaults(run=run_ask)

    models = commands.add_parser(
        "models", parents=[common], help="list the Gemini models and what each supports"
    )
    models.set_defaults(run=run_models)


def run_ask(ctx: Context) -> int:
    # google-genai takes most of a second to import: only the commands that call Gemini pay it.
    from core.gemini.client import GeminiClient
    from core.gemini.generation import generate
    from core.gemini.images import prepare_image

    a = ctx.args
    prompt = read_text_file("-") if a.prompt == "-" else a.prompt
    # Read and check every image before anything is sent: a wrong file fails fast and for free.
    images = [
        prepare_image(Path(path).read_bytes(), filename=path, max_pixels=ctx.settings.max_image_pixels)
        for path in a.image
    ]
    client = GeminiClient.from_settings(ctx.settings)
    answer = generate(client, prompt, model=a.model, system_instruction=a.system, images=images)
    if a.json:
        emit_json(
            {
                "text": answer.text,
                "model": answer.model,
                "finish_reason": answer.finish_reason,
                "usage": {
                    "prompt_tokens": answer.usage.prompt,
                    "answer_tokens": answer.usage.answer,
                    "thinking_tokens": answer.usage.thinking,
                    "total_tokens": answer.usage.total,
                },
            }
        )
    else:
        print(answer.text)
    if answer.truncated:
        print("note: the answer was cut off at the model's output limit", file=sys.stderr)
    return 0


def run_models(ctx: Context) -> int:
    from core.gemini.catalog import list_models
    from core.gemini.client import GeminiClient

    models = list_models(GeminiClient.from_settings(ctx.settings))
    if ctx.args.json:
        for m in models:
            emit_json(
                {
                    "name": m.name,
                    "display_name": m.display_name,
                    "methods": list(m.methods),
                    "input_token_limit": m.input_token_limit,
                    "output_token_limit": m.output_token_limit,
                }
            )
        return 0
    width = max((len(m.name) for m in models), default=4)
    print(f"{'model':<{width}}  {'input tokens':>12}  methods")
    for m in models:
        limit = f"{m.input_token_limit:,}" if m.input_token_limit else "?"
        print(f"{m.name:<{width}}  {limit:>12}  {', '.join(m.methods)}")
    return 0
