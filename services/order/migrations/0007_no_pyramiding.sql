-- OrderIntent.no_pyramiding: the entry was sent to open or turn a position only, never to add.
-- Kept with the order so its record shows the intent as received.
ALTER TABLE orders.orders ADD COLUMN IF NOT EXISTS no_pyramiding boolean NOT NULL DEFAULT false;
