//! The deployment itself: is the database answering, is the audit chain intact, the latest
//! audit entries of a centre, and a backup of the embedded database made from the page.

use std::path::Path;

use anxin_domain::audit::ChainBreak;
use anxin_domain::{DomainError, Permission};
use anxin_storage::{AuditEvent, AuditView};

use crate::{Actor, App, Result};

/// Whether the database answers (the health check).
pub async fn ping(app: &App) -> Result<()> {
    Ok(app.store.ping().await?)
}

/// Checks the audit chain: `Ok(entries)` when intact, or where it breaks.
pub async fn verify_audit(app: &App) -> Result<std::result::Result<i64, ChainBreak>> {
    Ok(app.store.verify_audit().await?)
}

/// The latest `limit` (1–1000) audit entries of `me`'s centre, newest first.
pub async fn recent_audit(app: &App, me: &Actor, limit: i64) -> Result<Vec<AuditView>> {
    me.require(Permission::AuditRead)?;
    if !(1..=1000).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be between 1 and 1000").into());
    }
    Ok(app.store.recent_audit(me.site_id, limit).await?)
}

/// Copies the embedded database into `dir` (made owner-only) as `anxin-<stamp>.sqlite3`,
/// audited as `backup.create`; answers the file's name. A PostgreSQL deployment is refused
/// (it is backed up with pg_dump).
pub async fn backup(app: &App, me: &Actor, dir: &Path) -> Result<String> {
    me.require(Permission::SiteManage)?;
    let stamp = app
        .now()
        .with_timezone(&app.settings.utc_offset)
        .format("%Y%m%d-%H%M%S");
    std::fs::create_dir_all(dir)
        .map_err(|e| DomainError::invalid("backup_dir", format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let name = format!("anxin-{stamp}.sqlite3");
    app.store.backup_to(&dir.join(&name)).await?;
    app.store
        .audit(
            &me.audit(),
            AuditEvent::new("backup.create", "backup", &name),
            app.now(),
        )
        .await?;
    Ok(name)
}
