-- The data time of the tick (or feed clock) that closed each candle: the newest quote a decision
-- on the candle can have seen. Nullable: candles stored before it was recorded keep it unknown.
ALTER TABLE market_data.candles ADD COLUMN IF NOT EXISTS closed_time timestamptz;
