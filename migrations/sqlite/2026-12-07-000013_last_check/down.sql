ALTER TABLE domains DROP COLUMN last_check;
