//! A client's photo, so that the window sees who is there: taken at intake or at the window
//! (`PhotoSet`), shown to the roles that dose (`PhotoView`), never to peer educators or outside
//! roles. The image is checked by its bytes and stripped of its metadata
//! ([`anxin_domain::photo::accept`]: JPEG, PNG or WebP, at most 2 MiB), stored only sealed with
//! the data key, and every read of it is audited with its purpose (`window`, `record`, `card`).

use anxin_domain::photo::{accept, MediaType};
use anxin_domain::Permission;
use schemars::JsonSchema;
use serde::Serialize;

use crate::{Actor, App, Result};

/// What the pages know of a client's photo without opening it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PhotoView {
    pub client_id: i64,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub media_type: String,
    /// When it was taken, RFC 3339.
    pub taken_at: String,
    /// The account that took it.
    pub taken_by: Option<String>,
}

/// A client's photo, opened.
pub struct Image {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}, {} bytes)", self.media_type, self.bytes.len())
    }
}

/// Why a photo is opened, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Beside a dose at the window.
    Window,
    /// On the client's page.
    Record,
    /// On the client's printed card.
    Card,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Window => "window",
            Purpose::Record => "record",
            Purpose::Card => "card",
        }
    }

    /// Reads a purpose (`window`, `record`, `card`); anything else is a record read.
    pub fn parse(s: &str) -> Purpose {
        match s {
            "window" => Purpose::Window,
            "card" => Purpose::Card,
            _ => Purpose::Record,
        }
    }
}

/// Takes (or replaces) a client's photo: refused by code at field `photo` when it is not a
/// JPEG, PNG or WebP or larger than 2 MiB; metadata stripped; stored sealed; audited.
pub async fn set_photo(app: &App, me: &Actor, client_id: i64, bytes: &[u8]) -> Result<PhotoView> {
    me.require(Permission::PhotoSet)?;
    let (kind, image) = accept(bytes)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    work.set_photo(client_id, kind.as_str(), &image, &app.vault)
        .await?;
    work.commit().await?;
    info(app, me, client_id).await?.ok_or_else(|| {
        crate::Error::Internal(format!("the photo of client {client_id} was not stored"))
    })
}

/// A client's photo, decrypted, for those who dose; audited with `purpose`. `None`: no photo.
pub async fn photo(
    app: &App,
    me: &Actor,
    client_id: i64,
    purpose: Purpose,
) -> Result<Option<Image>> {
    me.require(Permission::PhotoView)?;
    let Some(p) = app
        .store
        .read_photo(
            &me.audit(),
            client_id,
            purpose.as_str(),
            &app.vault,
            app.now(),
        )
        .await?
    else {
        return Ok(None);
    };
    let media_type = MediaType::parse(&p.media_type)
        .ok_or_else(|| crate::Error::Internal(format!("stored photo type {}", p.media_type)))?
        .as_str();
    Ok(Some(Image {
        media_type,
        bytes: p.image,
    }))
}

/// Whether a client has a photo (for those who take or see photos); nothing is opened.
pub async fn info(app: &App, me: &Actor, client_id: i64) -> Result<Option<PhotoView>> {
    if !me.role.has(Permission::PhotoView) {
        me.require(Permission::PhotoSet)?;
    }
    Ok(app
        .store
        .photo_info(&me.audit(), client_id)
        .await?
        .map(|p| PhotoView {
            client_id,
            media_type: p.media_type,
            taken_at: p.taken_at.to_rfc3339(),
            taken_by: p.taken_by,
        }))
}

/// At the window: the client of this centre with `uic`, and whether a photo of them is on
/// record (`None`: no client of this centre has that UIC, e.g. a guest).
pub async fn at_window(app: &App, me: &Actor, uic: &str) -> Result<Option<WindowPhoto>> {
    me.require(Permission::PhotoView)?;
    let Ok(c) = app.store.client_by_uic(uic).await else {
        return Ok(None);
    };
    if c.site_id != me.site_id {
        return Ok(None);
    }
    let has_photo = app.store.photo_info(&me.audit(), c.id).await?.is_some();
    Ok(Some(WindowPhoto {
        client_id: c.id,
        uic: c.uic,
        has_photo,
    }))
}

/// The client at the window and whether a photo is on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPhoto {
    pub client_id: i64,
    pub uic: String,
    pub has_photo: bool,
}
