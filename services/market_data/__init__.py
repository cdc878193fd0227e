"""The market-data plane: the single writer of ticks, candles and factors.

Feeds (replay files, bar files, a synthetic market, real venues, or a publisher calling
PublishTicks on a QUANTMESH_FEED=push plane) push `FeedTick`s into the `MarketDataEngine`,
which keeps a bounded tick window, aggregates candles at S5, M1, M5, H1, H4 and D1,
computes TA-Lib factors on every closed candle and streams all three to subscribers.
`CandleAggregator` and `FactorEngine` are pure and usable without gRPC or a database
(the in-process backtest uses them directly).
"""
