-- Trailing stops: an entry's trailing protection (OrderIntent.trailing_stop_distance) and a
-- TRAILING_STOP order's own distance behind the market (OrderIntent.trail_distance).
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS trailing_stop_distance numeric;
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS trail_distance numeric;
