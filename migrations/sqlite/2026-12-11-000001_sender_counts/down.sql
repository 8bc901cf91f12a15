DROP TRIGGER senders_stay;
DROP TRIGGER senders_counted_out;
DROP TRIGGER senders_counted_in;
ALTER TABLE domains DROP COLUMN sender_count;
