-- One row holds the global flags and the snapshot version. Every change locks this
-- row (SELECT ... FOR UPDATE), so changes are serialized and the version never
-- goes back, also across restarts.
CREATE TABLE control.global_flags (
    id                   smallint    PRIMARY KEY CHECK (id = 1),
    version              bigint      NOT NULL CHECK (version >= 1),
    global_entry_enabled boolean     NOT NULL,
    global_exit_enabled  boolean     NOT NULL,
    global_lock          boolean     NOT NULL,
    updated_time         timestamptz NOT NULL
);

-- A fresh install trades (entries and exits enabled, not locked) at version 1, so
-- that expected_version (where 0 means "do not check") is usable from the start.
INSERT INTO control.global_flags (id, version, global_entry_enabled, global_exit_enabled, global_lock, updated_time)
VALUES (1, 1, true, true, false, now());

CREATE TABLE control.strategy_flags (
    slug          text        PRIMARY KEY CHECK (slug ~ '^[a-z0-9_]{1,64}$'),
    entry_enabled boolean     NOT NULL,
    exit_enabled  boolean     NOT NULL,
    note          text        NOT NULL DEFAULT '',
    updated_time  timestamptz NOT NULL
);

-- One row per changed field, written in the same transaction as the change.
CREATE TABLE control.audit (
    id        bigserial   PRIMARY KEY,
    version   bigint      NOT NULL,
    actor     text        NOT NULL,
    role      text        NOT NULL,
    source    text        NOT NULL,
    reason    text        NOT NULL,
    slug      text        NOT NULL DEFAULT '',
    flag      text        NOT NULL,
    old_value text        NOT NULL,
    new_value text        NOT NULL,
    time      timestamptz NOT NULL
);

CREATE INDEX audit_actor_idx ON control.audit (actor, id DESC);
CREATE INDEX audit_slug_idx ON control.audit (slug, id DESC);
CREATE INDEX audit_time_idx ON control.audit (time, id DESC);
