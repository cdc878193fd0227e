-- Before decision_time was checked at the edge, a Submit could store 'infinity' (the poison
-- 9999-12-31T23:59:59.999999Z plus the venue's microsecond), which broke every read of the
-- order book. Such a time never came from a candle: it is cleared, as if none had been sent.
UPDATE orders.orders SET decision_time = NULL WHERE decision_time IN ('infinity', '-infinity');
