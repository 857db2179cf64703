"""The payloads' JSON text (``ENCODE_JSON``, its C encoder made once) is the text
``json.dumps(..., ensure_ascii=False)`` gives, so the stored JSON does not change."""

from __future__ import annotations

import json
import random

import pytest

from outreach.bulk import ENCODE_JSON

PAYLOADS = [
    {"purpose": "winback", "silence_days": 200, "threshold_days": 180,
     "questions": ["why_stopped", "what_would_bring_back"]},
    {"purpose": "reorder", "category": 'кофе "в зёрнах"\x1f\x1e\\\n\u2028', "cycle_days": 41.5,
     "expected": "2026-12-15 10:11:12.123456+00:00"},
    {"purpose": "nps", "category": None, "flag": True, "off": False, "nested": {"a": [1, 2.0]}},
    {"big": 10**30, "tiny": 5e-324, "neg": -0.0, "inf": float("inf"), "nan": float("nan")},
    {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
    [], {}, ["list", ("tuple", 1)],
]  # fmt: skip


def random_payloads(count: int) -> list[dict[str, object]]:
    rng = random.Random(17)
    return [
        {
            "f": rng.random() * 10 ** rng.randint(-8, 25),
            "i": rng.randint(-(10**20), 10**20),
            "s": "".join(chr(rng.randint(0, 0x4FF)) for _ in range(rng.randint(0, 8))),
        }
        for _ in range(count)
    ]


@pytest.mark.parametrize("payload", PAYLOADS + random_payloads(300))
def test_payload_text_is_json_dumps_text(payload: object) -> None:
    assert ENCODE_JSON(payload) == json.dumps(payload, ensure_ascii=False)


def test_a_value_json_cannot_encode_is_refused() -> None:
    with pytest.raises(TypeError):
        ENCODE_JSON({"at": object()})
