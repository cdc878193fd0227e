-- What the GMO Coin adapter sent, written before every POST: GMO has no client order id,
-- so this row is the only link from our client id to GMO's orderId, and it must outlive
-- the process (an order in flight across a restart is then resolved, not forgotten).
CREATE TABLE sent_orders (
    client_order_id text PRIMARY KEY,
    symbol          text        NOT NULL,
    side            text        NOT NULL,          -- BUY | SELL
    execution_type  text        NOT NULL,          -- MARKET | LIMIT
    size            numeric     NOT NULL,
    price           numeric,
    endpoint        text        NOT NULL,          -- /v1/order | /v1/closeOrder | /v1/closeBulkOrder
    position_id     bigint,                        -- the position a closeOrder settles
    sent_at         timestamptz NOT NULL,
    order_id        text UNIQUE,                   -- GMO's orderId once known
    finished        boolean     NOT NULL DEFAULT false
);
CREATE INDEX sent_orders_unfinished ON sent_orders (sent_at) WHERE NOT finished;
