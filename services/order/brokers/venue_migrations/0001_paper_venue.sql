-- The paper venue's own book: a fake external exchange. The order plane reads it
-- only through PaperBroker (the Broker interface), never with SQL of its own.
CREATE TABLE IF NOT EXISTS paper_venue.orders (
    number          bigserial PRIMARY KEY,
    client_order_id text NOT NULL UNIQUE,
    account         text NOT NULL,
    instrument      text NOT NULL,
    side            text NOT NULL,
    quantity        numeric NOT NULL,
    order_type      text NOT NULL,
    limit_price     numeric,
    stop_price      numeric,
    time_in_force   text NOT NULL,
    state           text NOT NULL,
    filled_quantity numeric NOT NULL DEFAULT 0,
    reference_time  timestamptz,
    triggered       boolean NOT NULL DEFAULT false,
    reason          text NOT NULL DEFAULT '',
    accepted_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS paper_venue.fills (
    broker_fill_id  text PRIMARY KEY,
    client_order_id text NOT NULL REFERENCES paper_venue.orders (client_order_id),
    quantity        numeric NOT NULL,
    price           numeric NOT NULL,
    commission      numeric NOT NULL,
    time            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_order ON paper_venue.fills (client_order_id);
