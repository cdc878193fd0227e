-- The order plane's audit records (refusals, cancels, flattens) on their way to the control
-- plane's audit trail (services/common/audit.py). A refusal's record is written in the same
-- statement as the REJECTED order, so neither exists without the other.
CREATE TABLE IF NOT EXISTS orders.audit_outbox (
    record_id text PRIMARY KEY,
    body      jsonb NOT NULL,
    created   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_outbox_by_created ON orders.audit_outbox (created, record_id);
