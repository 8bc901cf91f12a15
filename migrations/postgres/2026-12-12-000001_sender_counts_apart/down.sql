ALTER TABLE domains ADD COLUMN sender_count BIGINT NOT NULL DEFAULT 0;

UPDATE domains SET sender_count = counted.sender_count
FROM domain_sender_counts AS counted
WHERE domains.id = counted.domain_id;

CREATE OR REPLACE FUNCTION senders_counted_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE domains SET sender_count = domains.sender_count + added.n
    FROM (SELECT domain_id, count(*) AS n FROM inserted GROUP BY domain_id) AS added
    WHERE domains.id = added.domain_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION senders_counted_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE domains SET sender_count = domains.sender_count - gone.n
    FROM (SELECT domain_id, count(*) AS n FROM removed GROUP BY domain_id) AS gone
    WHERE domains.id = gone.domain_id;
    RETURN NULL;
END
$$;

DROP TABLE domain_sender_counts;
