DROP INDEX events_key_generations;
