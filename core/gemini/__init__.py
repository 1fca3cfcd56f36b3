"""Gembot's use of the Gemini API, through the official `google-genai` SDK.

`client` builds the SDK client from `Settings` and turns its failures into `core.gemini.failures`;
`generation` asks questions (text, conversations, images), `images` readies image bytes, `files`
uploads the big ones, `embedder` embeds texts at quota speed, `models` lists the models. Nothing
here knows about Slack.
"""
