"""Helpers for the tests of `core.gemini`: settings aimed at a stand-in, tiny images made by Pillow."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

from PIL import Image

from core.gemini.client import GeminiClient
from core.settings import Secret, Settings
from tests.support.gemini import GeminiStandIn

# Retries as the product does them, with delays short enough for a test.
FAST: dict[str, Any] = {
    "gemini_timeout": 5.0,
    "gemini_retries": 2,
    "gemini_retry_delay": 0.01,
    "gemini_max_retry_wait": 5.0,
    "gemini_file_timeout": 5.0,
}


def gemini_settings(standin: GeminiStandIn, **overrides: Any) -> Settings:
    """Settings that point Gembot at `standin`, with fast retries unless `overrides` say otherwise."""
    values: dict[str, Any] = {
        "gemini_api_key": Secret(standin.api_key),
        "gemini_base_url": standin.base_url,
        **FAST,
        **overrides,
    }
    return Settings(**values)


def gemini_client(standin: GeminiStandIn, **overrides: Any) -> GeminiClient:
    return GeminiClient.from_settings(gemini_settings(standin, **overrides))


def image_bytes(fmt: str, *, size: tuple[int, int] = (5, 4), mode: str = "RGB", noise: bool = False) -> bytes:
    """A small image in Pillow format `fmt` ("PNG", "GIF", ...): a gradient, or incompressible noise."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size)
        image.putdata(
            [(x * 40 % 256, y * 60 % 256, (x + y) * 20 % 256) for y in range(size[1]) for x in range(size[0])]
        )
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def heif_header(major: str, *compatible: str) -> bytes:
    """The start of an ISO-BMFF file: an `ftyp` box with these brands, then some bytes."""
    body = major.encode() + b"\0\0\0\0" + b"".join(c.encode() for c in compatible)
    box = (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body
    return box + b"\0\0\0\x08meta" + bytes(64)


def decode_base64(value: str) -> bytes:
    """Bytes from JSON as the SDK writes them (URL-safe base64) or as Google does (standard)."""
    standard = value.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
