-- Closed candles and the factor sets computed on them, each with its stream seq.
-- Idempotent on (instrument, timeframe, start): a candle is stored once, whatever replays.
CREATE TABLE IF NOT EXISTS market_data.candles (
    seq          bigint PRIMARY KEY,
    instrument   text NOT NULL,
    timeframe    text NOT NULL,
    start_time   timestamptz NOT NULL,
    end_time     timestamptz NOT NULL,
    bid_open     double precision NOT NULL,
    bid_high     double precision NOT NULL,
    bid_low      double precision NOT NULL,
    bid_close    double precision NOT NULL,
    ask_open     double precision NOT NULL,
    ask_high     double precision NOT NULL,
    ask_low      double precision NOT NULL,
    ask_close    double precision NOT NULL,
    mid_open     double precision NOT NULL,
    mid_high     double precision NOT NULL,
    mid_low      double precision NOT NULL,
    mid_close    double precision NOT NULL,
    tick_count   bigint NOT NULL,
    volume       double precision NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    tracestate   text NOT NULL DEFAULT '',
    UNIQUE (instrument, timeframe, start_time)
);

CREATE TABLE IF NOT EXISTS market_data.factor_sets (
    seq                bigint PRIMARY KEY,
    instrument         text NOT NULL,
    timeframe          text NOT NULL,
    candle_start_time  timestamptz NOT NULL,
    factor_values      jsonb NOT NULL,
    traceparent        text NOT NULL DEFAULT '',
    tracestate         text NOT NULL DEFAULT '',
    UNIQUE (instrument, timeframe, candle_start_time)
);
