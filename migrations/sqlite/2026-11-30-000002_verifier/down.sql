DROP INDEX domains_next_check_at;
