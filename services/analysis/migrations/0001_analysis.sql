-- The analysis plane's own schema: decisions (signals), the fills it follows, the market's
-- state per candle, and every strategy's settings with their history.

-- Every decision of every worker. signal_id is the worker's key: a signal sent twice is kept once.
CREATE TABLE IF NOT EXISTS analysis.signals (
    seq                bigserial PRIMARY KEY,
    signal_id          text NOT NULL UNIQUE,
    strategy_slug      text NOT NULL,
    role               text NOT NULL,
    instrument         text NOT NULL,
    action             text NOT NULL,
    reason             text NOT NULL,
    confidence         double precision,
    indicators         jsonb NOT NULL DEFAULT '{}'::jsonb,
    params_version     bigint NOT NULL,
    allocation_version bigint NOT NULL,
    size_multiplier    numeric NOT NULL,
    decision_time      timestamptz NOT NULL,
    client_order_id    text NOT NULL DEFAULT '',
    side               text NOT NULL DEFAULT '',
    quantity           numeric,
    price_ref          double precision NOT NULL,
    trace_id           text NOT NULL DEFAULT '',
    recorded_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS signals_by_strategy ON analysis.signals (strategy_slug, seq);
CREATE INDEX IF NOT EXISTS signals_by_client_order ON analysis.signals (client_order_id) WHERE client_order_id <> '';
CREATE INDEX IF NOT EXISTS signals_entries ON analysis.signals (strategy_slug, decision_time) WHERE action = 'entry';

-- The order plane's fills as Order.WatchFills streamed them; the stream resumes after max(seq).
CREATE TABLE IF NOT EXISTS analysis.fills (
    seq             bigint PRIMARY KEY,
    fill_id         text NOT NULL,
    client_order_id text NOT NULL,
    strategy_slug   text NOT NULL,
    account         text NOT NULL,
    instrument      text NOT NULL,
    side            text NOT NULL,
    quantity        numeric NOT NULL,
    price           numeric NOT NULL,
    commission      numeric NOT NULL,
    fill_time       timestamptz NOT NULL
);

-- The instrument's state as of each closed candle: what a decision at that time saw.
CREATE TABLE IF NOT EXISTS analysis.market_states (
    instrument     text NOT NULL,
    as_of          timestamptz NOT NULL,
    atr            double precision,
    atr_percentile double precision,
    regime         text NOT NULL,
    spread         double precision NOT NULL,
    mid_close      double precision NOT NULL,
    PRIMARY KEY (instrument, as_of)
);

-- Each strategy's current settings, and every version it had.
CREATE TABLE IF NOT EXISTS analysis.strategy_settings (
    strategy_slug text PRIMARY KEY,
    version       bigint NOT NULL,
    body          jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS analysis.settings_history (
    strategy_slug text NOT NULL,
    version       bigint NOT NULL,
    body          jsonb NOT NULL,
    PRIMARY KEY (strategy_slug, version)
);

-- Audit records (settings changes, freezes) on their way to the control plane's audit trail
-- (services/common/audit.py), written in the same transaction as the change they record.
CREATE TABLE IF NOT EXISTS analysis.audit_outbox (
    record_id text PRIMARY KEY,
    body      jsonb NOT NULL,
    created   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_outbox_by_created ON analysis.audit_outbox (created, record_id);
