-- Financing (swap) the venue reported on trades held across its rollover (OANDA DAILY_FINANCING),
-- once per venue id, booked to the strategy whose entry opened the trade. The position plane
-- reads it with Order.ListFinancing (QUANTMESH_FINANCING_SOURCE=venue).
CREATE TABLE IF NOT EXISTS orders.financing (
    seq            bigserial PRIMARY KEY,
    financing_id   text NOT NULL UNIQUE,
    account        text NOT NULL,
    instrument     text NOT NULL,
    strategy_slug  text NOT NULL,
    amount         numeric NOT NULL,
    currency       text NOT NULL,
    time           timestamptz NOT NULL,
    broker_fill_id text NOT NULL,
    recorded_time  timestamptz NOT NULL DEFAULT now()
);
