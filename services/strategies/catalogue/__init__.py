"""The strategy catalogue: one module per strategy, each docstring stating its rule exactly.

`STRATEGIES` is an immutable tuple; the registry builds its slug lookup from it.
"""

from services.strategies.catalogue.bollinger_touch import BollingerTouch
from services.strategies.catalogue.impulse_retest_s5 import ImpulseRetestS5
from services.strategies.catalogue.m1scalper import M1Scalper
from services.strategies.catalogue.ma_cross import MaCross
from services.strategies.catalogue.macd_rsi_div import MacdRsiDiv
from services.strategies.catalogue.micro_adaptive_revert import MicroAdaptiveRevert
from services.strategies.catalogue.micro_multi import MicroMulti
from services.strategies.catalogue.rsi_threshold import RsiThreshold
from services.strategies.catalogue.scalp_ping_5s import ScalpPing5s
from services.strategies.catalogue.session_open import SessionOpen
from services.strategies.catalogue.squeeze_pulse_break import SqueezePulseBreak
from services.strategies.catalogue.tick_imbalance import TickImbalance
from services.strategies.catalogue.wick_reversal_blend import WickReversalBlend
from services.strategies.catalogue.wick_reversal_pro import WickReversalPro

STRATEGIES = (
    MaCross,
    RsiThreshold,
    BollingerTouch,
    ScalpPing5s,
    MacdRsiDiv,
    TickImbalance,
    SqueezePulseBreak,
    WickReversalBlend,
    WickReversalPro,
    M1Scalper,
    MicroMulti,
    MicroAdaptiveRevert,
    ImpulseRetestS5,
    SessionOpen,
)

__all__ = ["STRATEGIES"]
