-- Trailing stops of the paper venue: the distance behind the market, and the trigger as it stands
-- now (it moves with the market, and must survive a restart of the order process).
ALTER TABLE paper_venue.orders ADD COLUMN IF NOT EXISTS trail_distance numeric;
ALTER TABLE paper_venue.orders ADD COLUMN IF NOT EXISTS trail_stop numeric;
