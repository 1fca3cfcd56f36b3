"""Decompression bombs for tests: small files that declare, and really decode to, huge images.

`gif_bomb(12_000, 12_000)` is a GIF of one colour whose LZW data really covers every one of its
144 million pixels, in about 55 KB: a decoder that trusted it would fill hundreds of MB. The LZW
codes of a run of one colour are known in advance (each new code is the previous string plus one
pixel, until the 4,096-entry table is full, then its longest string again and again), so the file
is written code by code, without ever holding the image.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

_MIN_CODE_SIZE = 2  # two colours; the codes start 3 bits wide
_CLEAR = 1 << _MIN_CODE_SIZE
_END = _CLEAR + 1
_FIRST_FREE = _CLEAR + 2
_TABLE = 4096


def _run_codes(pixels: int) -> list[int]:
    """The LZW codes (after a clear code) of `pixels` pixels of colour 0."""
    codes = [0]  # the first pixel, by its colour
    left = pixels - 1
    longest = 1  # code 4 + n stands for n pixels once the decoder has made it (n >= 2)
    while left >= longest + 1 and _FIRST_FREE + longest - 1 < _TABLE:
        longest += 1
        codes.append(_CLEAR + longest)  # the entry being made: the decoder's "KwKwK" case
        left -= longest
    while left >= longest:
        codes.append(_code_of(longest))
        left -= longest
    if left:
        codes.append(_code_of(left))
    return codes


def _code_of(run: int) -> int:
    """The code of a run of `run` pixels the table already holds: the colour itself for one."""
    return 0 if run == 1 else _CLEAR + run


def _packed(codes: list[int]) -> bytes:
    """`codes` (after a clear) and an end code, packed least significant bit first at the width a
    GIF decoder reads each at."""
    out = bytearray()
    buffer = bits = 0
    following = _FIRST_FREE  # the next table entry the decoder will make

    def put(code: int, width: int) -> None:
        nonlocal buffer, bits
        buffer |= code << bits
        bits += width
        while bits >= 8:
            out.append(buffer & 0xFF)
            buffer >>= 8
            bits -= 8

    put(_CLEAR, _MIN_CODE_SIZE + 1)
    for n, code in enumerate(codes):
        put(code, min(12, following.bit_length()))
        if n > 0 and following < _TABLE:
            following += 1
    put(_END, min(12, following.bit_length()))
    if bits:
        out.append(buffer & 0xFF)
    return bytes(out)


def gif_bomb(width: int, height: int) -> bytes:
    """A GIF of `width` × `height` black pixels, every one of them in its LZW data."""
    data = _packed(_run_codes(width * height))
    blocks = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + bytes([_MIN_CODE_SIZE]) + blocks + b"\x00\x3b"


REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter, so that its peak RSS is the bomb's alone, not the caller's.
_MEASURE = """
import json, resource, sys, time
from core.gemini.failures import ImageTooLarge
from core.gemini.images import prepare_image
from tests.support.image_bombs import gif_bomb

def peak_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

width, height = int(sys.argv[1]), int(sys.argv[2])
bomb = gif_bomb(width, height)
before = peak_kb()
start = time.perf_counter()
try:
    prepare_image(bomb, filename="bomb.gif")
    outcome = "accepted"
except ImageTooLarge as exc:
    outcome = str(exc)
seconds = time.perf_counter() - start
print(json.dumps({"bytes": len(bomb), "outcome": outcome, "seconds": seconds, "grew_kb": peak_kb() - before}))
"""


def measure_bomb(width: int, height: int) -> dict[str, Any]:
    """`prepare_image` on `gif_bomb(width, height)` in a fresh interpreter: the file's `bytes`,
    the `outcome` (the refusal's words, or "accepted"), `seconds`, and the peak RSS it added
    (`grew_kb`). Pillow's DecompressionBombWarning, printed before the refusal, is silenced there."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _MEASURE, str(width), str(height)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured
