-- A tracker that reports over OsmAnd or MQTT carries a per-device token; only its SHA-256 rests
-- here (the token is shown once, when the tracker is fitted). NULL: a GT06 tracker, whose
-- protocol carries no secret, so its positions are marked unauthenticated.
ALTER TABLE trackers ADD COLUMN token_hash TEXT;
