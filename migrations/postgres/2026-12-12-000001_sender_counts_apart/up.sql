-- Each domain's sender count in a row of its own (postgres). Keep in step with migrations/sqlite.

-- 2026-12-11 kept the count in the domain's row, so every registration wrote that
-- row. A registration then waited for whatever held it without the organization's
-- lock (the inbound toggle, a rotation, a check's outcome), and every other
-- organization's registration in its batch waited with it. Only the senders'
-- triggers write this row, and senders come and go under their organization's
-- lock: the count stays exact and nothing else contends for it.
CREATE TABLE domain_sender_counts (
    domain_id    BIGINT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    sender_count BIGINT NOT NULL
);

INSERT INTO domain_sender_counts (domain_id, sender_count)
SELECT id, sender_count FROM domains WHERE sender_count <> 0;

-- In domain order, so two statements counting the same domains never wait on
-- each other in a circle.
CREATE OR REPLACE FUNCTION senders_counted_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO domain_sender_counts (domain_id, sender_count)
    SELECT domain_id, count(*) FROM inserted GROUP BY domain_id ORDER BY domain_id
    ON CONFLICT (domain_id)
    DO UPDATE SET sender_count = domain_sender_counts.sender_count + EXCLUDED.sender_count;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION senders_counted_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE domain_sender_counts SET sender_count = domain_sender_counts.sender_count - gone.n
    FROM (SELECT domain_id, count(*) AS n FROM removed GROUP BY domain_id) AS gone
    WHERE domain_sender_counts.domain_id = gone.domain_id;
    RETURN NULL;
END
$$;

ALTER TABLE domains DROP COLUMN sender_count;
