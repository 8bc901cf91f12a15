-- What the last check found, record by record (postgres). Keep in step with the other
-- backend's migrations.
ALTER TABLE domains ADD COLUMN last_check TEXT;
