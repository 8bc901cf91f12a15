DROP TRIGGER senders_counted_out;
DROP TRIGGER senders_counted_in;

ALTER TABLE domains ADD COLUMN sender_count INTEGER NOT NULL DEFAULT 0;

UPDATE domains SET sender_count = coalesce(
    (SELECT sender_count FROM domain_sender_counts WHERE domain_id = domains.id), 0);

CREATE TRIGGER senders_counted_in AFTER INSERT ON senders
BEGIN
    UPDATE domains SET sender_count = sender_count + 1 WHERE id = NEW.domain_id;
END;

CREATE TRIGGER senders_counted_out AFTER DELETE ON senders
BEGIN
    UPDATE domains SET sender_count = sender_count - 1 WHERE id = OLD.domain_id;
END;

DROP TABLE domain_sender_counts;
