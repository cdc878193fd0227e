-- The position plane's ledger. Money is numeric (exact); nothing here is a float.

-- Every fill applied, once: fill_id is unique and seq is the order plane's fill-stream seq.
CREATE TABLE positions.applied_fills (
    seq          bigint PRIMARY KEY,
    fill_id      text NOT NULL UNIQUE,
    account      text NOT NULL,
    instrument   text NOT NULL,
    strategy     text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity     numeric NOT NULL CHECK (quantity > 0),
    price        numeric NOT NULL CHECK (price > 0),
    commission   numeric NOT NULL,
    fill_time    timestamptz NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now()
);

-- The last fill-stream seq applied (or skipped as a duplicate); one row.
CREATE TABLE positions.fill_cursor (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_fill_seq bigint NOT NULL
);
INSERT INTO positions.fill_cursor (id, last_fill_seq) VALUES (true, 0);

-- Current state of each position; the ledger is rebuilt from these tables on start.
CREATE TABLE positions.position_state (
    account         text NOT NULL,
    instrument      text NOT NULL,
    strategy        text NOT NULL,
    quantity        numeric NOT NULL,
    average_price   numeric,
    realized_pnl    numeric NOT NULL,
    commission      numeric NOT NULL,
    opened_time     timestamptz,
    updated_time    timestamptz,
    trip_realized   numeric NOT NULL,
    trip_commission numeric NOT NULL,
    PRIMARY KEY (account, instrument, strategy)
);

CREATE TABLE positions.strategy_state (
    account            text NOT NULL,
    slug               text NOT NULL,
    wins               integer NOT NULL,
    losses             integer NOT NULL,
    consecutive_losses integer NOT NULL,
    PRIMARY KEY (account, slug)
);

CREATE TABLE positions.account_state (
    account      text PRIMARY KEY,
    realized_pnl numeric NOT NULL,
    commission   numeric NOT NULL,
    peak_equity  numeric,
    max_drawdown numeric NOT NULL
);

CREATE TABLE positions.marks (
    instrument text PRIMARY KEY,
    bid        numeric NOT NULL,
    ask        numeric NOT NULL,
    mark_time  timestamptz NOT NULL
);

CREATE TABLE positions.equity_samples (
    id          bigserial PRIMARY KEY,
    account     text NOT NULL,
    sample_time timestamptz NOT NULL,
    equity      numeric NOT NULL,
    balance     numeric NOT NULL,
    drawdown    numeric NOT NULL
);
CREATE INDEX equity_samples_by_time ON positions.equity_samples (account, sample_time);

-- Audited corrections from Reconcile: who, why, when, and what both sides said.
CREATE TABLE positions.adjustments (
    id              bigserial PRIMARY KEY,
    account         text NOT NULL,
    instrument      text NOT NULL,
    quantity        numeric NOT NULL,
    price           numeric NOT NULL,
    ledger_quantity numeric NOT NULL,
    broker_quantity numeric NOT NULL,
    broker          text NOT NULL,
    actor           text NOT NULL,
    reason          text NOT NULL CHECK (reason <> ''),
    adjusted_at     timestamptz NOT NULL
);

-- The position stream (WatchPositions), kept so a resume reaches past the in-memory ring
-- and seqs keep increasing across restarts.
CREATE TABLE positions.position_events (
    seq            bigint PRIMARY KEY,
    account        text NOT NULL,
    instrument     text NOT NULL,
    strategy       text NOT NULL,
    quantity       numeric NOT NULL,
    average_price  numeric,
    realized_pnl   numeric NOT NULL,
    unrealized_pnl numeric NOT NULL,
    commission     numeric NOT NULL,
    mark_price     numeric,
    opened_time    timestamptz,
    updated_time   timestamptz,
    cause          text NOT NULL,
    traceparent    text NOT NULL,
    tracestate     text NOT NULL
);
