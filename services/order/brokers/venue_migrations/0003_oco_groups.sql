-- One-cancels-other groups of the paper venue (a position's protective stop, take-profit and exits).
ALTER TABLE paper_venue.orders ADD COLUMN IF NOT EXISTS oco_group text NOT NULL DEFAULT '';
