-- See orders 0004: a reference time of 'infinity' came only from a poison decision time.
-- Such an order can never become active; it is left working from its first quote instead.
UPDATE paper_venue.orders SET reference_time = NULL WHERE reference_time IN ('infinity', '-infinity');
