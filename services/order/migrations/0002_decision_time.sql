-- The data time of the newest quote the decision saw (OrderIntent.decision_time); NULL when the
-- caller sent none. Kept with the order so a PENDING_SUBMIT order sent again after a restart
-- still fills only after it.
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS decision_time timestamptz;
