-- The exact sum of the tick volumes of each candle (double precision `volume` is that sum rounded
-- once). A bucket rebuilt after a restart adds the stored S5 sums, so it must get them exactly.
-- Nullable: candles stored before it was recorded fall back to their float volume.
ALTER TABLE market_data.candles ADD COLUMN IF NOT EXISTS exact_volume numeric;
