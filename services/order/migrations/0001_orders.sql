-- Orders, their event log and their fills. The order plane is the single writer.
CREATE SEQUENCE IF NOT EXISTS orders.order_numbers;

CREATE TABLE IF NOT EXISTS orders.orders (
    number             bigint PRIMARY KEY,
    -- The idempotency key: a second Submit with the same id can never create a second order,
    -- not even across a restart or from a second process.
    client_order_id    text NOT NULL UNIQUE,
    strategy_slug      text NOT NULL,
    role               text NOT NULL,
    account            text NOT NULL,
    instrument         text NOT NULL,
    side               text NOT NULL,
    quantity           numeric NOT NULL,
    order_type         text NOT NULL,
    limit_price        numeric,
    stop_price         numeric,
    time_in_force      text NOT NULL,
    reduce_only        boolean NOT NULL,
    note               text NOT NULL,
    traceparent        text NOT NULL,
    tracestate         text NOT NULL,
    state              text NOT NULL,
    filled_quantity    numeric NOT NULL,
    average_fill_price numeric,
    commission         numeric NOT NULL,
    reject_rule        text NOT NULL,
    reason             text NOT NULL,
    broker_order_id    text NOT NULL,
    broker             text NOT NULL,
    created_time       timestamptz NOT NULL,
    updated_time       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_unfinished ON orders.orders (state)
    WHERE state IN ('PENDING_SUBMIT', 'SUBMITTED', 'NEW', 'PARTIALLY_FILLED');
CREATE INDEX IF NOT EXISTS orders_by_strategy ON orders.orders (strategy_slug, number DESC);

-- seq is assigned by the engine (one higher than the last, under its event lock), not by a
-- bigserial: a rolled-back insert would leave a gap in a bigserial, and WatchOrders promises none.
CREATE TABLE IF NOT EXISTS orders.order_events (
    seq           bigint PRIMARY KEY,
    order_number  bigint NOT NULL REFERENCES orders.orders (number),
    strategy_slug text NOT NULL,
    snapshot      jsonb NOT NULL,
    traceparent   text NOT NULL,
    tracestate    text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders.fills (
    seq             bigint PRIMARY KEY,
    -- A venue's execution is recorded once, however often the venue reports it.
    broker_fill_id  text NOT NULL UNIQUE,
    order_number    bigint NOT NULL REFERENCES orders.orders (number),
    client_order_id text NOT NULL,
    strategy_slug   text NOT NULL,
    account         text NOT NULL,
    instrument      text NOT NULL,
    side            text NOT NULL,
    quantity        numeric NOT NULL,
    price           numeric NOT NULL,
    commission      numeric NOT NULL,
    time            timestamptz NOT NULL,
    traceparent     text NOT NULL,
    tracestate      text NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_order ON orders.fills (order_number, seq);
