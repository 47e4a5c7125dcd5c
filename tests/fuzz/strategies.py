"""Hypothesis strategies for hostile payloads: valid messages, mutated a little or a lot.

Bounded in CI (``PARKWATCH_FUZZ_EXAMPLES``, default 60 per property); a longer run:
``PARKWATCH_FUZZ_EXAMPLES=5000 python -m pytest tests/fuzz -p no:cacheprovider``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("PARKWATCH_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 200,  # CI runs are repeatable; long runs explore
    database=None,  # no .hypothesis folder: a CI run must not depend on an earlier one
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes, is_json: bool = True) -> bytes:
    """``valid`` itself, a field replaced or removed, bytes flipped, cut or padded, or noise
    (the field edits and the oversize padding only when ``valid`` is a JSON object)."""
    how = draw(st.sampled_from(
        ["same", "same", "field", "field", "drop", "flip", "cut", "pad", "noise", "huge"]))
    if how == "same":
        return valid
    if not is_json and how in ("field", "drop", "huge"):
        how = "flip"
    if how == "huge":  # over every payload size cap, still valid JSON
        return valid[:-1] + b" " * (2 << 20) + valid[-1:]
    if how in ("field", "drop"):
        doc: dict[str, Any] = json.loads(valid)
        key = draw(st.sampled_from(sorted(doc)))
        if how == "drop":
            del doc[key]
        else:
            doc[key] = draw(JSON)
        return json.dumps(doc).encode()
    if how == "flip":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "cut":
        return valid[: draw(st.integers(0, len(valid)))]
    if how == "pad":
        return valid + draw(st.binary(min_size=1, max_size=64))
    return draw(st.binary(max_size=512))
