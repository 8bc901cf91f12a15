-- An organization's domains by name (postgres). Keep in step with migrations/sqlite.

-- The domains list pages through an organization's domains in name order: with only
-- an index on organization_id, a page of an organization with 100 k domains read and
-- sorted all of them (SQLite: 1.1 s a page at 1 M domains, bench/datasize.py). This
-- index serves the page as a range, and every lookup by organization as before.
CREATE INDEX domains_organization_name ON domains (organization_id, name);
DROP INDEX domains_organization_id;
