"""Settings with one value per instrument: "USD_JPY=500000,BTC_JPY=0.5".

Used for the risk limits' per-instrument overrides and the financing rates, so each such
variable reads the same way and a mistake names the variable and the entry.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from services.common.config import ConfigError, Env

_INSTRUMENT = re.compile(r"^[A-Z0-9]{2,12}_[A-Z0-9]{2,12}$")


def per_instrument(env: Env, name: str, *, positive: bool = False) -> tuple[tuple[str, Decimal], ...]:
    """(instrument, value) pairs, sorted by instrument; empty when unset."""
    found: dict[str, Decimal] = {}
    for entry in env.list(name):
        instrument, sep, text = (part.strip() for part in entry.partition("="))
        if not sep or not _INSTRUMENT.match(instrument):
            raise ConfigError(f"{name} has {entry!r}; write INSTRUMENT=VALUE entries such as USD_JPY=500000")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ConfigError(f"{name} has {entry!r}, whose value is not a decimal number") from None
        if not value.is_finite() or (positive and value <= 0):
            raise ConfigError(f"{name} has {entry!r}; the value must be a {'positive' if positive else 'finite'} "
                              "number")
        if instrument in found:
            raise ConfigError(f"{name} names {instrument} twice")
        found[instrument] = value
    return tuple(sorted(found.items()))
