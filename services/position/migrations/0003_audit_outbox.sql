-- The position plane's audit records (reconciliation decisions) on their way to the control
-- plane's audit trail (services/common/audit.py).
CREATE TABLE IF NOT EXISTS positions.audit_outbox (
    record_id text PRIMARY KEY,
    body      jsonb NOT NULL,
    created   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_outbox_by_created ON positions.audit_outbox (created, record_id);
