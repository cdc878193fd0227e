-- The kill switch's second half: while the lock is on, the order plane cancels every open order.
-- On by default; an operator who wants a lock that leaves resting orders working turns it off.
ALTER TABLE control.global_flags ADD COLUMN IF NOT EXISTS lock_cancels_open_orders boolean NOT NULL DEFAULT true;
