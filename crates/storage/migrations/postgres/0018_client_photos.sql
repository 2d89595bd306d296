-- Kept in step with migrations/sqlite/0018_client_photos.sql.
-- A client's photo for the dispensing window: one current photo per client, sealed with the
-- data key like the identity (bound to the client, under a purpose of its own), never in
-- clear. Replacing a photo overwrites the row: no older copy is kept.
CREATE TABLE client_photos (
    client_id   BIGINT  PRIMARY KEY REFERENCES clients(id),
    sealed      BYTEA   NOT NULL,
    media_type  TEXT    NOT NULL,
    taken_at    BIGINT  NOT NULL,
    taken_by    BIGINT  REFERENCES users(id)
);
