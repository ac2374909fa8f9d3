-- Two copies of `events` for docs/scaling/measure-partitions.sh: as the migrations leave it, and hash-partitioned by application.
CREATE TABLE apps (id uuid PRIMARY KEY);
INSERT INTO apps SELECT ('00000000-0000-0000-0000-0000000000' || lpad(g::text, 2, '0'))::uuid FROM generate_series(1, 20) g;

-- The events table as migrations 2, 5, 6 and 7 leave it (9 indexes including the primary key).
CREATE TABLE events_plain (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL, application_id uuid NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  session_id varchar(128) NOT NULL, category varchar(64) NOT NULL, name varchar(64) NOT NULL,
  data jsonb NOT NULL, "timestamp" timestamptz NOT NULL, sent_at timestamptz,
  received_at timestamptz NOT NULL, stored_at timestamptz NOT NULL,
  user_id varchar(128), device_id varchar(128));
-- The same, hash-partitioned by application: the primary key must now contain application_id.
CREATE TABLE events_hash (
  id bigserial,
  event_id uuid NOT NULL, application_id uuid NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  session_id varchar(128) NOT NULL, category varchar(64) NOT NULL, name varchar(64) NOT NULL,
  data jsonb NOT NULL, "timestamp" timestamptz NOT NULL, sent_at timestamptz,
  received_at timestamptz NOT NULL, stored_at timestamptz NOT NULL,
  user_id varchar(128), device_id varchar(128),
  PRIMARY KEY (application_id, id)) PARTITION BY HASH (application_id);
DO $$ BEGIN FOR i IN 0..7 LOOP
  EXECUTE format('CREATE TABLE events_hash_p%s PARTITION OF events_hash FOR VALUES WITH (MODULUS 8, REMAINDER %s)', i, i);
END LOOP; END $$;

DO $$ DECLARE t text; BEGIN FOREACH t IN ARRAY ARRAY['events_plain', 'events_hash'] LOOP
  EXECUTE format('CREATE UNIQUE INDEX %1$s_application_event_key ON %1$s (application_id, event_id)', t);
  EXECUTE format('CREATE INDEX %1$s_session_time_idx ON %1$s (application_id, session_id, "timestamp", id)', t);
  EXECUTE format('CREATE INDEX %1$s_type_time_idx ON %1$s (category, name, "timestamp")', t);
  EXECUTE format('CREATE INDEX %1$s_time_idx ON %1$s ("timestamp") INCLUDE (application_id, category, name)', t);
  EXECUTE format('CREATE INDEX %1$s_application_time_idx ON %1$s (application_id, "timestamp", id)', t);
  EXECUTE format('CREATE INDEX %1$s_category_time_idx ON %1$s (category, "timestamp", id)', t);
  EXECUTE format('CREATE INDEX %1$s_user_time_idx ON %1$s (user_id, "timestamp", id)', t);
  EXECUTE format('CREATE INDEX %1$s_rules_user_time_idx ON %1$s (application_id, user_id, "timestamp", id)', t);
END LOOP; END $$;
