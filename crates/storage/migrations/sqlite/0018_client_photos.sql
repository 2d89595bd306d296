-- Kept in step with migrations/postgres/0018_client_photos.sql.
-- A client's photo for the dispensing window: one current photo per client, sealed with the
-- data key like the identity (bound to the client, under a purpose of its own), never in
-- clear. Replacing a photo overwrites the row: no older copy is kept.
CREATE TABLE client_photos (
    client_id   INTEGER PRIMARY KEY REFERENCES clients(id),
    sealed      BLOB    NOT NULL,
    media_type  TEXT    NOT NULL,
    taken_at    INTEGER NOT NULL,
    taken_by    INTEGER REFERENCES users(id)
);
