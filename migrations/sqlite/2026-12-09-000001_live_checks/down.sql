DROP TABLE live_checks;
