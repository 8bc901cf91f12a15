-- Each domain's number of senders, kept by the database (sqlite). Keep in step with migrations/postgres.

-- A registration checks the sender limit (DOMAIN_API_MAX_SENDERS_PER_DOMAIN) against
-- the domain's senders. Counting them per read cost what the domain had grown to
-- (docs/benchmarks.md, "The sender count"). The count is now a column, moved by
-- these triggers whatever inserts or deletes the senders (a registration, a claim,
-- a domain deleted with its senders).
ALTER TABLE domains ADD COLUMN sender_count INTEGER NOT NULL DEFAULT 0;

UPDATE domains SET sender_count = (SELECT count(*) FROM senders WHERE senders.domain_id = domains.id);

CREATE TRIGGER senders_counted_in AFTER INSERT ON senders
BEGIN
    UPDATE domains SET sender_count = sender_count + 1 WHERE id = NEW.domain_id;
END;

CREATE TRIGGER senders_counted_out AFTER DELETE ON senders
BEGIN
    UPDATE domains SET sender_count = sender_count - 1 WHERE id = OLD.domain_id;
END;

-- A sender never moves to another domain; the count would not follow it.
CREATE TRIGGER senders_stay BEFORE UPDATE OF domain_id ON senders
WHEN OLD.domain_id IS NOT NEW.domain_id
BEGIN
    SELECT RAISE(ABORT, 'a sender stays on its domain');
END;
