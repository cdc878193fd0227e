"""The planes' messages as the console's JSON: trader's words, exact decimals kept as strings.

Enum values lose their prefixes ("FILLED", not "ORDER_STATE_FILLED"), times are RFC 3339 in UTC
(empty when unset), versions and seqs are numbers. The JSON API and the page read the same
shapes; docs/console.md shows them.
"""

from __future__ import annotations

from datetime import timezone

from quantmesh.analysis.v1 import analysis_pb2
from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2
from quantmesh.strategy.v1 import strategy_pb2
from services.console.planes import PlaneHealth, operator_of


def time_text(message, field: str) -> str:
    if not message.HasField(field):
        return ""
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def _name(enum, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        return str(value)


def flags(snapshot: control_pb2.FlagSnapshot) -> dict:
    return {
        "version": snapshot.version,
        "state": _name(control_pb2.TradingState, snapshot.state, "TRADING_STATE_"),
        "global_entry_enabled": snapshot.global_entry_enabled,
        "global_exit_enabled": snapshot.global_exit_enabled,
        "global_lock": snapshot.global_lock,
        "strategies": [{"slug": s.slug, "entry_enabled": s.entry_enabled, "exit_enabled": s.exit_enabled,
                        "note": s.note, "updated_time": time_text(s, "updated_time")} for s in snapshot.strategies],
        "updated_time": time_text(snapshot, "updated_time"),
    }


def audit_entry(entry: control_pb2.AuditEntry) -> dict:
    return {"id": entry.id, "version": entry.version, "actor": entry.actor, "operator": operator_of(entry.reason),
            "role": entry.role, "source": entry.source, "reason": entry.reason, "strategy": entry.slug,
            "flag": entry.flag, "old_value": entry.old_value, "new_value": entry.new_value,
            "time": time_text(entry, "time")}


def order(record: order_pb2.OrderRecord) -> dict:
    intent = record.intent
    return {
        "order_id": record.order_id, "client_order_id": intent.client_order_id, "strategy": intent.strategy_slug,
        "role": _name(common_pb2.StrategyRole, intent.role, "STRATEGY_ROLE_"), "instrument": intent.instrument,
        "side": _name(common_pb2.Side, intent.side, "SIDE_"), "quantity": intent.quantity,
        "order_type": _name(order_pb2.OrderType, intent.order_type, "ORDER_TYPE_"),
        "limit_price": intent.limit_price, "stop_price": intent.stop_price, "account": intent.account,
        "state": _name(order_pb2.OrderState, record.state, "ORDER_STATE_"),
        "filled_quantity": record.filled_quantity, "average_fill_price": record.average_fill_price,
        "commission": record.commission, "reject_rule": record.reject_rule, "reason": record.reason,
        "broker": record.broker, "broker_order_id": record.broker_order_id,
        "created_time": time_text(record, "created_time"), "updated_time": time_text(record, "updated_time"),
    }


def fill(event: order_pb2.Fill, seq: int | None = None) -> dict:
    out = {"fill_id": event.fill_id, "order_id": event.order_id, "client_order_id": event.client_order_id,
           "strategy": event.strategy_slug, "account": event.account, "instrument": event.instrument,
           "side": _name(common_pb2.Side, event.side, "SIDE_"), "quantity": event.quantity, "price": event.price,
           "commission": event.commission, "time": time_text(event, "time")}
    if seq is not None:
        out["seq"] = seq
    return out


def position(record: position_pb2.PositionRecord) -> dict:
    return {"account": record.account, "instrument": record.instrument, "strategy": record.strategy_slug,
            "quantity": record.quantity, "average_price": record.average_price, "mark_price": record.mark_price,
            "unrealized_pnl": record.unrealized_pnl, "realized_pnl": record.realized_pnl,
            "commission": record.commission, "opened_time": time_text(record, "opened_time"),
            "updated_time": time_text(record, "updated_time")}


def account(summary: position_pb2.AccountSummary) -> dict:
    return {"account": summary.account, "currency": summary.currency, "balance": summary.balance,
            "equity": summary.equity, "peak_equity": summary.peak_equity, "drawdown": summary.drawdown,
            "drawdown_fraction": summary.drawdown_fraction, "max_drawdown": summary.max_drawdown}


def positions(snapshot: position_pb2.SnapshotResponse) -> dict:
    return {"last_fill_seq": snapshot.last_fill_seq, "as_of": time_text(snapshot, "as_of"),
            "account": account(snapshot.account), "positions": [position(p) for p in snapshot.positions],
            "strategies": [{"slug": s.slug, "realized_pnl": s.realized_pnl, "unrealized_pnl": s.unrealized_pnl,
                            "consecutive_losses": s.consecutive_losses, "wins": s.wins, "losses": s.losses}
                           for s in snapshot.strategies]}


def equity_sample(sample: position_pb2.EquitySample) -> dict:
    return {"time": time_text(sample, "time"), "equity": sample.equity, "balance": sample.balance,
            "drawdown": sample.drawdown}


def plane_health(health: PlaneHealth) -> dict:
    return {"plane": health.plane, "address": health.address, "serving": health.serving, "status": health.status}


def worker(address: str, status: strategy_pb2.GetStatusResponse | None, problem: str = "") -> dict:
    if status is None:
        return {"address": address, "name": address, "state": "DOWN", "problem": problem}
    role = _name(common_pb2.StrategyRole, status.role, "STRATEGY_ROLE_").lower()
    last = status.last_decision
    return {
        "address": address, "name": f"{status.slug}.{role}", "strategy": status.slug, "role": role,
        "state": _name(strategy_pb2.WorkerState, status.state, "WORKER_STATE_"), "events": status.events,
        "intents_submitted": status.intents_submitted, "intents_rejected": status.intents_rejected,
        "skipped_by_flags": status.skipped_by_flags, "strategy_errors": status.strategy_errors,
        "last_error": status.last_error,
        "last_decision": {"time": time_text(last, "time"), "action": last.action, "reason": last.reason,
                          "client_order_id": last.client_order_id, "instrument": last.instrument}
        if status.HasField("last_decision") else None,
        "started_time": time_text(status, "started_time"),
    }


def figures(f: analysis_pb2.PerformanceFigures) -> dict:
    """A run of closed trades. Ratios without a value (no losing trade, fewer than two trades) are null."""
    return {"trades": f.trades, "wins": f.wins, "losses": f.losses, "win_rate": f.win_rate, "net_pnl": f.net_pnl,
            "gross_profit": f.gross_profit, "gross_loss": f.gross_loss, "commission": f.commission,
            "expectancy": f.expectancy,
            "profit_factor": f.profit_factor if f.HasField("profit_factor") else None,
            "sharpe": f.sharpe if f.HasField("sharpe") else None, "max_drawdown": f.max_drawdown}


def allocation(a: analysis_pb2.Allocation) -> dict:
    return {"size_multiplier": a.size_multiplier, "entries_enabled": a.entries_enabled, "reason": a.reason}


def analysis(performance: analysis_pb2.GetPerformanceResponse, allocations: analysis_pb2.GetAllocationsResponse,
             settings: analysis_pb2.GetStrategySettingsResponse) -> dict:
    """One row per strategy and instrument with trades, and one per strategy analysis only has settings for:
    how it went (overall and rolling), what the policy recommends, and what the workers apply."""
    recommended = {r.strategy_slug: r for r in allocations.recommendations}
    current = {s.strategy_slug: s for s in settings.settings}

    def strategy_part(slug: str) -> dict:
        rec, now = recommended.get(slug), current.get(slug)
        return {
            "recommended": allocation(rec.recommended) if rec is not None and rec.HasField("recommended") else None,
            "regime": _name(analysis_pb2.VolatilityRegime, rec.regime, "VOLATILITY_REGIME_") if rec else "",
            "applied": allocation(now.allocation) if now is not None and now.HasField("allocation") else None,
            "frozen": bool(now and now.frozen),
            "settings_version": now.version if now else 0,
            "params": dict(sorted(now.params.items())) if now else {},
            "updated_by": now.updated_by if now else "",
        }

    rows = [{"strategy": p.strategy_slug, "instrument": p.instrument, "overall": figures(p.overall),
             "rolling": figures(p.rolling), "rolling_trades": p.rolling_trades, "open_quantity": p.open_quantity,
             "last_trade_time": time_text(p, "last_trade_time"), **strategy_part(p.strategy_slug)}
            for p in performance.performance]
    traded = {p.strategy_slug for p in performance.performance}
    rows += [{"strategy": slug, "instrument": "", "overall": None, "rolling": None, "rolling_trades": 0,
              "open_quantity": "", "last_trade_time": "", **strategy_part(slug)}
             for slug in sorted((set(current) | set(recommended)) - traded)]
    return {"configured": True, "policy": allocations.policy, "last_fill_seq": performance.last_fill_seq,
            "strategies": rows}


def strategy_settings(settings: analysis_pb2.StrategySettings) -> dict:
    return {"strategy": settings.strategy_slug, "version": settings.version, "frozen": settings.frozen,
            "params": dict(sorted(settings.params.items())),
            "allocation": allocation(settings.allocation) if settings.HasField("allocation") else None,
            "updated_by": settings.updated_by, "reason": settings.reason,
            "updated_time": time_text(settings, "updated_time")}
