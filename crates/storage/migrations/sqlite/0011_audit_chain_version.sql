-- Kept in step with migrations/postgres/0011_audit_chain_version.sql.
-- How each audit entry's hash was made (anxin_domain::audit): 1 = plain SHA-256, as every
-- entry written before this migration; 2 = HMAC-SHA-256 under the audit key derived from the
-- data key file (outside the database). The log is append-only, so old entries keep version 1
-- and the first keyed entry chains onto the last of them; the verifier refuses an unkeyed
-- entry after a keyed one. Adding a column fires no row trigger.
ALTER TABLE audit_log ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 1;
