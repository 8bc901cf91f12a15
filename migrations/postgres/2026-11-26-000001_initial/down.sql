DROP TABLE senders;
DROP TABLE domains;
DROP TABLE api_tokens;
DROP TABLE organizations;
