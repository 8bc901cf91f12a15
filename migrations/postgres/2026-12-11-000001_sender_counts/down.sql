DROP TRIGGER senders_stay ON senders;
DROP FUNCTION senders_stay();
DROP TRIGGER senders_counted_out ON senders;
DROP TRIGGER senders_counted_in ON senders;
DROP FUNCTION senders_counted_out();
DROP FUNCTION senders_counted_in();
ALTER TABLE domains DROP COLUMN sender_count;
