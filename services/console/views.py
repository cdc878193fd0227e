"""The planes' messages as the console's JSON: trader's words, exact decimals kept as strings.

Enum values lose their prefixes ("FILLED", not "ORDER_STATE_FILLED"), times are RFC 3339 in UTC
(empty when unset), versions and seqs are numbers. The JSON API and the page read the same
shapes; docs/console.md shows them.
"""

from __future__ import annotations

from datetime import timezone

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
