-- One row per start of the plane. Ticks are kept in memory only, so the tick stream's seqs of one
-- run start above every seq an earlier run can have handed out ((start number - 1) * 2^40): a
-- resume with a seq from before a restart is then refused as older than what is retained, never
-- answered with another run's ticks under the same seqs, nor refused as "ahead".
CREATE TABLE IF NOT EXISTS market_data.starts (
    start_number  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now()
);
