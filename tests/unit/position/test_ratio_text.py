"""drawdownFraction is a ratio, not money: eight places at most, rounded up (never shown, nor
read by the order plane's risk check, as less than it is)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.position.server import ratio_text


@pytest.mark.parametrize("value, text", [
    (Decimal(1) / Decimal(3), "0.33333334"),
    (Decimal("12345.678") / Decimal("10012345.678"), "0.00123305"),
    (Decimal("0.2"), "0.2"), (Decimal("0.20000000"), "0.2"), (Decimal(0), "0"), (Decimal(1), "1"),
])
def test_a_ratio_has_at_most_eight_places_and_is_rounded_up(value, text):
    assert ratio_text(value) == text
