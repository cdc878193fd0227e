-- Hold and skip signals are pruned by the time they were recorded (QUANTMESH_ANALYSIS_HOLD_RETENTION_DAYS);
-- this index keeps the hourly delete from reading the whole table.
CREATE INDEX IF NOT EXISTS signals_holds_by_recorded_time ON analysis.signals (recorded_time)
    WHERE action IN ('hold', 'skip');
