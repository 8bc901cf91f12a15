CREATE INDEX domains_organization_id ON domains (organization_id);
DROP INDEX domains_organization_name;
