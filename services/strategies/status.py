"""What a worker has done, for GetStatus and `quantmesh status`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from services.strategies.desk import Decision

if TYPE_CHECKING:
    from services.strategies.tuning import Applied


@dataclass(slots=True)
class WorkerStatus:
    slug: str
    role: str
    started: datetime
    params: dict[str, str]
    state: str = "WARMING_UP"  # WARMING_UP | RUNNING | PAUSED | RECONNECTING
    last_candle_seq: int = 0
    last_factor_seq: int = 0
    events: int = 0
    intents_submitted: int = 0
    intents_rejected: int = 0
    skipped_by_flags: int = 0
    last_decision: Decision | None = None
    last_reject_reason: str = ""
    decisions: int = field(default=0)
    # The analysis plane's settings the last decision applied, and the last ones it could not.
    settings: "Applied | None" = None
    settings_problem: str = ""
