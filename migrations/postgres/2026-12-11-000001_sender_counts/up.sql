-- Each domain's number of senders, kept by the database (postgres). Keep in step with migrations/sqlite.

-- A registration checks the sender limit (DOMAIN_API_MAX_SENDERS_PER_DOMAIN) against
-- the domain's senders. Counting them per read cost what the domain had grown to:
-- 2.4 ms a batch for four domains of ~10,000 senders, more than the batch's writes
-- (docs/benchmarks.md, "The sender count"). The count is now a column, moved by
-- these triggers whatever inserts or deletes the senders (a registration, a claim,
-- a domain deleted with its senders), once per statement.
ALTER TABLE domains ADD COLUMN sender_count BIGINT NOT NULL DEFAULT 0;

UPDATE domains SET sender_count = counted.n
FROM (SELECT domain_id, count(*) AS n FROM senders GROUP BY domain_id) AS counted
WHERE domains.id = counted.domain_id;

CREATE FUNCTION senders_counted_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE domains SET sender_count = domains.sender_count + added.n
    FROM (SELECT domain_id, count(*) AS n FROM inserted GROUP BY domain_id) AS added
    WHERE domains.id = added.domain_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION senders_counted_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE domains SET sender_count = domains.sender_count - gone.n
    FROM (SELECT domain_id, count(*) AS n FROM removed GROUP BY domain_id) AS gone
    WHERE domains.id = gone.domain_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER senders_counted_in AFTER INSERT ON senders
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION senders_counted_in();

CREATE TRIGGER senders_counted_out AFTER DELETE ON senders
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION senders_counted_out();

-- A sender never moves to another domain; the count would not follow it.
CREATE FUNCTION senders_stay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a sender stays on its domain';
END
$$;

CREATE TRIGGER senders_stay BEFORE UPDATE OF domain_id ON senders
    FOR EACH ROW WHEN (OLD.domain_id IS DISTINCT FROM NEW.domain_id)
    EXECUTE FUNCTION senders_stay();
