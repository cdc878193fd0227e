-- Order event snapshots are written three or more times per order and only ever read back
-- whole (WatchOrders replays them), never queried inside: `json` keeps the text as written,
-- where `jsonb` parsed and re-encoded every snapshot on the write path.
ALTER TABLE orders.order_events ALTER COLUMN snapshot TYPE json USING snapshot::json;
