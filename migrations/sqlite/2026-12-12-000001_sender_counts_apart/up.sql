-- Each domain's sender count in a row of its own (sqlite). Keep in step with migrations/postgres.

-- 2026-12-11 kept the count in the domain's row. On PostgreSQL every registration
-- then wrote that row and waited for whatever else held it; SQLite has one writer
-- and no row locks, but keeps the same tables so both backends read the count alike.
CREATE TABLE domain_sender_counts (
    domain_id    INTEGER PRIMARY KEY NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    sender_count INTEGER NOT NULL
);

INSERT INTO domain_sender_counts (domain_id, sender_count)
SELECT id, sender_count FROM domains WHERE sender_count <> 0;

DROP TRIGGER senders_counted_in;
DROP TRIGGER senders_counted_out;
ALTER TABLE domains DROP COLUMN sender_count;

CREATE TRIGGER senders_counted_in AFTER INSERT ON senders
BEGIN
    INSERT INTO domain_sender_counts (domain_id, sender_count) VALUES (NEW.domain_id, 1)
    ON CONFLICT (domain_id) DO UPDATE SET sender_count = sender_count + 1;
END;

CREATE TRIGGER senders_counted_out AFTER DELETE ON senders
BEGIN
    UPDATE domain_sender_counts SET sender_count = sender_count - 1
    WHERE domain_id = OLD.domain_id;
END;
