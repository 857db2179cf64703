from __future__ import annotations

import pytest

from nlu import classify_intent, classify_reason, extract_score


@pytest.fixture(scope="session", autouse=True)
def _nlu_loaded() -> None:
    """Load the morphology dictionaries once, so no test's timing includes it."""
    classify_intent("да")
    classify_reason("доставка")
    extract_score("девять")
