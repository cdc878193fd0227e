"""The position plane: the single writer of positions and PnL.

Builds positions per (account, instrument, strategy) from the order plane's fills
(Order.WatchFills, resumable, each fill applied exactly once), marks them with
market data ticks, keeps account figures (balance, equity, drawdown) in the account's
currency (`currency`: conversion through market data's quotes), figures per trading
day (`days`), financing at the daily rollover (`financing`) and per-strategy round-trip
figures, and reconciles with the broker's own positions.

`ledger.Ledger` is the pure domain engine; `engine.PositionEngine` adds the store
port, the position event stream and the single-writer lock, so a backtest can run
the same code with `memory_store.InMemoryStore` and a simulated clock.
"""
