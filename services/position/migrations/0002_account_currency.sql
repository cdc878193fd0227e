-- Money in the account's currency, trading days and financing (issue 16).

-- The money of every fill (adjustments included: key "adjustment:...") and financing charge, in
-- its own currency and in the account's, with the quote it was converted at. A booking made
-- before any quote of its conversion pair is `pending` (no account amounts) until the first
-- quote arrives; then the row gets that quote.
CREATE TABLE positions.bookings (
    key                text PRIMARY KEY,  -- the fill id or the financing charge id
    kind               text NOT NULL CHECK (kind IN ('fill', 'financing')),
    account            text NOT NULL,
    instrument         text NOT NULL,
    strategy           text NOT NULL,
    booked_time        timestamptz NOT NULL,
    currency           text NOT NULL,
    pnl                numeric NOT NULL,   -- realized PnL (fill) or financing, in `currency`
    commission         numeric NOT NULL,   -- in `currency`
    pending            boolean NOT NULL,
    rate_instrument    text,               -- '' when no conversion was needed
    rate_bid           numeric,
    rate_ask           numeric,
    rate_time          timestamptz,
    rate_inverse       boolean,
    pnl_account        numeric,
    commission_account numeric,
    CHECK (pending = (pnl_account IS NULL))
);
CREATE INDEX bookings_pending ON positions.bookings (currency) WHERE pending;

-- Financing charges: computed at a rollover from configured rates, or reported by the venue.
CREATE TABLE positions.financing (
    charge_id    text PRIMARY KEY REFERENCES positions.bookings (key),
    account      text NOT NULL,
    instrument   text NOT NULL,
    strategy     text NOT NULL,
    charged_time timestamptz NOT NULL,
    quantity     numeric NOT NULL,
    price        numeric,
    annual_rate  numeric,
    amount       numeric NOT NULL,
    currency     text NOT NULL,
    source       text NOT NULL CHECK (source IN ('rates', 'venue'))
);

-- Each account's figures per trading day, in the account's currency.
CREATE TABLE positions.trading_days (
    account        text NOT NULL,
    day_start      timestamptz NOT NULL,
    day_end        timestamptz NOT NULL,
    trading_date   date NOT NULL,
    opening_equity numeric NOT NULL,
    peak_equity    numeric NOT NULL,
    realized_pnl   numeric NOT NULL,  -- net of commission, with financing
    PRIMARY KEY (account, day_start)
);

-- The converted part of a position's money, and its financing, in the account's currency.
-- Before this migration PnL was added to the account as is, in the instrument's quote currency:
-- the existing rows keep those figures.
ALTER TABLE positions.position_state
    ADD COLUMN realized_pnl_account numeric,
    ADD COLUMN commission_account numeric,
    ADD COLUMN financing numeric NOT NULL DEFAULT 0;
UPDATE positions.position_state SET realized_pnl_account = realized_pnl, commission_account = commission;
ALTER TABLE positions.position_state
    ALTER COLUMN realized_pnl_account SET NOT NULL,
    ALTER COLUMN commission_account SET NOT NULL;

ALTER TABLE positions.account_state ADD COLUMN financing numeric NOT NULL DEFAULT 0;

-- The trading day of the newest fill or quote applied: a restart must not charge a rollover twice.
ALTER TABLE positions.fill_cursor ADD COLUMN trading_day_start timestamptz;
