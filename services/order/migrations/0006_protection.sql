-- Protection an entry asks for (OrderIntent.stop_loss_distance / take_profit_distance): kept with the
-- order, so the venue protection can be placed, and placed again after a partial close, from it.
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS stop_loss_distance numeric;
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS take_profit_distance numeric;
