-- Kept in step with migrations/postgres/0012_sealed_codes.sql.
-- No code or box secret at rest in clear (docs/lockcode.md §7):
-- * a code message keeps its real text only sealed with the data key (`sealed_body`), for the
--   worker to open at send time; `body` holds the text with the code masked, for pages and
--   logs. The sealed text is erased once the message is final or its day has passed.
-- * a return starts with a challenge the server draws (`return_challenge`, issued at
--   `challenge_at`); the box's export must carry it, so an old export cannot stand in.
-- * a reconciled load's secret is erased: loads already returned lose theirs now.
ALTER TABLE sms_outbox ADD COLUMN sealed_body BLOB;
-- Only live codes carry a sealed text: erasing the spent ones reads this small index.
CREATE INDEX sms_outbox_sealed ON sms_outbox(expires_at) WHERE sealed_body IS NOT NULL;
ALTER TABLE box_loads ADD COLUMN return_challenge INTEGER;
ALTER TABLE box_loads ADD COLUMN challenge_at INTEGER;
UPDATE box_loads SET secret = NULL WHERE state = 'returned';
