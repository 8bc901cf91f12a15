-- The zone a check's SOA lookup last found the domain in (sqlite). Keep in step with
-- migrations/postgres.

-- NULL until a check found it: the records are then relative to the registrable
-- domain. Never cleared by a failed lookup.
ALTER TABLE domains ADD COLUMN zone TEXT;
