-- One audit trail for every plane: flag changes (event flag_change, plane control) and the
-- records other planes send (RecordAudit), each kept once by its record_id.
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS event      text NOT NULL DEFAULT 'flag_change';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS plane      text NOT NULL DEFAULT 'control';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS mode       text NOT NULL DEFAULT '';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS site       text NOT NULL DEFAULT '';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS session    text NOT NULL DEFAULT '';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS subject    text NOT NULL DEFAULT '';
ALTER TABLE control.audit ADD COLUMN IF NOT EXISTS record_id  text UNIQUE;
CREATE INDEX IF NOT EXISTS audit_event_idx ON control.audit (event, id DESC);
CREATE INDEX IF NOT EXISTS audit_plane_idx ON control.audit (plane, id DESC);
