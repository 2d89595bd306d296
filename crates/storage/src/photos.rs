//! A client's photo for the dispensing window (migration 0018): one current photo per client,
//! sealed with the data key under a purpose of its own ([`Vault::seal_photo`], bound to the
//! client), with its media type and when and by whom it was taken. Replacing it overwrites the
//! row, so no older copy stays. Reading the image is site-scoped and audited
//! (`client.photo.read` with its purpose) like [`Store::read_identity`]; another centre's
//! client is answered as not found.

use chrono::{DateTime, Utc};

use crate::audit::{Actor, AuditEvent};
use crate::vault::Vault;
use crate::{col, from_ms, to_ms, Result, Store, StoreError};

/// A client's photo, decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct Photo {
    pub media_type: String,
    pub image: Vec<u8>,
    pub taken_at: DateTime<Utc>,
}

impl std::fmt::Debug for Photo {
    // Never the image's bytes in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("media_type", &self.media_type)
            .field("bytes", &self.image.len())
            .field("taken_at", &self.taken_at)
            .finish()
    }
}

/// What is known of a client's photo without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoInfo {
    pub media_type: String,
    pub taken_at: DateTime<Utc>,
    /// The username of whoever took it, if an account did.
    pub taken_by: Option<String>,
}

impl Store {
    /// Decrypts a client's photo for `actor` (same site; another centre's client is not found).
    /// Each photo read writes `client.photo.read` with `purpose`; `None` when there is none.
    pub async fn read_photo(
        &self,
        actor: &Actor,
        client_id: i64,
        purpose: &str,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> Result<Option<Photo>> {
        let c = self.client_for_write(actor, client_id).await?;
        let row = sqlx::query(
            "SELECT sealed, media_type, taken_at FROM client_photos WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.audit(
            actor,
            AuditEvent::new("client.photo.read", "client", client_id)
                .site(c.site_id)
                .reason(purpose),
            now,
        )
        .await?;
        let sealed: Vec<u8> = col(&row, "sealed")?;
        let image = vault
            .open_photo(client_id, &sealed)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(Photo {
            media_type: col(&row, "media_type")?,
            image,
            taken_at: from_ms(col(&row, "taken_at")?)?,
        }))
    }

    /// Whether a client of `actor`'s site has a photo, and when it was taken: no image is
    /// opened (the window and the record page link to it; serving it is the audited read).
    pub async fn photo_info(&self, actor: &Actor, client_id: i64) -> Result<Option<PhotoInfo>> {
        self.client_for_write(actor, client_id).await?;
        let row = sqlx::query(
            "SELECT p.media_type, p.taken_at, u.username FROM client_photos p \
             LEFT JOIN users u ON u.id = p.taken_by WHERE p.client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(PhotoInfo {
                media_type: col(&r, "media_type")?,
                taken_at: from_ms(col(&r, "taken_at")?)?,
                taken_by: col(&r, "username")?,
            })
        })
        .transpose()
    }
}

impl crate::Work {
    /// Stores a client's photo (an image already checked and stripped of its metadata), sealed,
    /// in place of any earlier one, with the `client.photo.update` entry (kind and size only).
    pub async fn set_photo(
        &mut self,
        client_id: i64,
        media_type: &str,
        image: &[u8],
        vault: &Vault,
    ) -> Result<()> {
        let c = self.client_for_write(client_id).await?;
        let sealed = vault.seal_photo(client_id, image);
        let taken_by = self.actor().user_id;
        let now = to_ms(self.now());
        sqlx::query("DELETE FROM client_photos WHERE client_id = $1")
            .bind(client_id)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO client_photos (client_id, sealed, media_type, taken_at, taken_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(sealed)
        .bind(media_type.to_owned())
        .bind(now)
        .bind(taken_by)
        .execute(self.conn())
        .await?;
        self.audit(
            AuditEvent::new("client.photo.update", "client", client_id)
                .site(c.site_id)
                .reason(format!("{media_type}, {} KB", image.len().div_ceil(1024))),
        )
        .await?;
        Ok(())
    }
}
