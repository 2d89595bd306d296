-- Kept in step with migrations/sqlite/0010_login_throttle.sql.
-- Failed-login counts at three levels (anxin_domain::auth::LoginPolicy):
--   (account, address)  one account from one client address
--   (account, '')       one account from every address
--   ('', address)       one address over every account
-- `account` is anxin_domain::auth::account_key of the username as typed, so unknown usernames
-- are counted like real ones and names typed by mistake are not kept in clear.
CREATE TABLE login_throttle (
    account          TEXT   NOT NULL,
    address          TEXT   NOT NULL,
    failures         BIGINT NOT NULL,
    last_failure_at  BIGINT NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE INDEX login_throttle_last ON login_throttle (last_failure_at);
