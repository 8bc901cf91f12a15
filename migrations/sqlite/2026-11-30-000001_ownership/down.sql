DROP INDEX events_domain_created;
DROP TABLE domain_claims;
