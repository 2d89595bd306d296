-- Kept in step with migrations/sqlite/0013_staff_password_change.sql.
-- A password set by a manager (a reset) must be changed by its owner at the next login.
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
-- The person's real name, as colleagues know them (the username stays the login).
ALTER TABLE users ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
