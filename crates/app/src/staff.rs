//! Centres and staff accounts: creating a centre, adding a colleague, role change, password
//! reset and the owner's own password change, unlocking and (de)activating an account, and the
//! interface language. A manager manages the accounts of their own centre and of roles they may
//! grant; an admin reaches every centre.

use anxin_domain::access::check_same_site;
use anxin_domain::auth::PasswordContext;
use anxin_domain::{Code, DomainError, Problem, Role};
use anxin_storage::{NewUser, Site, User};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::passwords::{hash_password, hash_unchecked, verify_password};
use crate::{Actor, App, Error, Result};

/// A new staff account.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffRequest {
    pub username: String,
    /// The person's real name (optional, at most 100 characters).
    #[serde(default)]
    pub full_name: Option<String>,
    /// admin, manager, prescriber, dispenser, counsellor, peer_educator, cdc_analyst, psb_officer
    pub role: String,
    /// At least 12 characters.
    pub password: String,
    #[serde(default)]
    pub language: Option<String>,
    /// Site code; defaults to the caller's site. Only an admin may name another site.
    #[serde(default)]
    pub site: Option<String>,
}

/// Every centre of the deployment.
pub async fn sites(app: &App) -> Result<Vec<Site>> {
    Ok(app.store.list_sites().await?)
}

/// A centre by id.
pub async fn site(app: &App, id: i64) -> Result<Site> {
    Ok(app.store.site(id).await?)
}

/// Creates a centre.
pub async fn create_site(app: &App, me: &Actor, code: &str, name: &str) -> Result<Site> {
    Ok(app
        .store
        .create_site(&me.audit(), code, name, app.now())
        .await?)
}

/// The accounts of `me`'s centre.
pub async fn accounts(app: &App, me: &Actor) -> Result<Vec<User>> {
    Ok(app.store.users_of_site(me.site_id).await?)
}

/// The hash of a new password for `username` at `site`, checked against the policy.
pub async fn new_password_hash(password: &str, username: &str, site: &Site) -> Result<String> {
    let context = PasswordContext {
        username,
        centre_name: &site.name,
        centre_code: &site.code,
    };
    hash_password(password, &context).await
}

/// Creates a staff account (the API, the staff page and the command line).
pub async fn create_account(
    app: &App,
    me: &Actor,
    my_language: &str,
    req: NewStaffRequest,
) -> Result<User> {
    let role: Role = req.role.parse()?;
    if !me.role.may_grant(role) {
        return Err(DomainError::Forbidden(format!(
            "a {} may not create {} accounts",
            me.role, role
        ))
        .into());
    }
    let site = match req.site.as_deref() {
        None | Some("") => app.store.site(me.site_id).await?,
        Some(code) => {
            let site = app.store.site_by_code(code).await?;
            if me.role != Role::Admin {
                check_same_site(me.site_id, site.id, format_args!("site {code}"))?;
            }
            site
        }
    };
    anxin_domain::validate::username(&req.username)?;
    let password_hash = new_password_hash(&req.password, &req.username, &site).await?;
    create_with_hash(
        app,
        me,
        NewUser {
            site_id: site.id,
            username: req.username,
            full_name: req.full_name.clone().unwrap_or_default(),
            role,
            password_hash,
            language: req.language.unwrap_or_else(|| my_language.to_owned()),
        },
    )
    .await
}

/// Stores an account whose password was hashed by the caller (the command line's first admin,
/// the demo centre's published password, test fixtures).
pub async fn create_with_hash(app: &App, me: &Actor, user: NewUser) -> Result<User> {
    Ok(app.store.create_user(&me.audit(), user, app.now()).await?)
}

/// Hashes the demo centre's published password, which the policy refuses on purpose.
pub async fn demo_password_hash(password: &str) -> Result<String> {
    hash_unchecked(password).await
}

/// The account `id`, if `me` may manage it: of `me`'s site (an admin reaches every site), of a
/// role `me` may grant, and not `me`'s own.
async fn managed_account(app: &App, me: &Actor, id: i64) -> Result<User> {
    let target = app.store.user(id).await?;
    if me.role != Role::Admin {
        check_same_site(
            me.site_id,
            target.site_id,
            format_args!("staff account {id}"),
        )?;
    }
    if !me.role.may_grant(target.role) || target.id == me.user_id {
        return Err(DomainError::Forbidden(format!(
            "a {} may not change this {} account",
            me.role, target.role
        ))
        .into());
    }
    Ok(target)
}

/// An account of `me`'s centre that `me` may manage (the staff page's account form).
pub async fn account(app: &App, me: &Actor, id: i64) -> Result<User> {
    managed_account(app, me, id).await
}

/// Gives account `id` another role (one `me` may grant); its sessions end.
pub async fn change_role(app: &App, me: &Actor, id: i64, role: &str) -> Result<()> {
    let target = managed_account(app, me, id).await?;
    let role: Role = role.parse()?;
    if !me.role.may_grant(role) {
        return Err(Problem::new(Code::StaffRoleNotGrantable)
            .field("role")
            .arg("role", role)
            .into());
    }
    app.store
        .set_user_role(&me.audit(), &target, role, app.now())
        .await?;
    Ok(())
}

/// The longest real name of an account, in characters.
pub const MAX_FULL_NAME_CHARS: usize = 100;

/// Gives account `id` (one `me` manages) the person's real name; empty clears it.
pub async fn rename(app: &App, me: &Actor, id: i64, full_name: &str) -> Result<()> {
    let target = managed_account(app, me, id).await?;
    let name = full_name.trim();
    if name.chars().count() > MAX_FULL_NAME_CHARS {
        return Err(Problem::new(Code::TextTooLong)
            .field("full_name")
            .arg("max", MAX_FULL_NAME_CHARS)
            .into());
    }
    app.store
        .set_full_name(&me.audit(), &target, name, app.now())
        .await?;
    Ok(())
}

/// A temporary password: 16 letters and digits without look-alikes, in groups of four.
fn temporary_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Resets account `id`'s password to a temporary one, which is answered once (never stored in
/// clear, never logged); its owner must change it at the next login.
pub async fn reset_password(app: &App, me: &Actor, id: i64) -> Result<String> {
    let target = managed_account(app, me, id).await?;
    let temporary = temporary_password();
    let hash = hash_unchecked(&temporary).await?;
    app.store
        .set_password(&me.audit(), &target, &hash, true, app.now())
        .await?;
    Ok(temporary)
}

/// The owner changes their password: the current one, then a new one that meets the policy.
pub async fn change_own_password(app: &App, me: &Actor, current: &str, new: &str) -> Result<()> {
    let auth = app
        .store
        .user_auth(&me.username)
        .await?
        .ok_or_else(|| Error::Internal("the logged-in account has no password".into()))?;
    if !verify_password(&auth.password_hash, current).await? {
        return Err(Problem::new(Code::PasswordWrong).field("current").into());
    }
    if crate::sessions::same_token(current, new) {
        return Err(Problem::new(Code::PasswordUnchanged).field("new").into());
    }
    let site = app.store.site(me.site_id).await?;
    let hash = new_password_hash(new, &me.username, &site)
        .await
        .map_err(|e| match e {
            // The policy names `password`; the owner's form calls it `new`.
            Error::Domain(DomainError::Refused(p)) if p.field.as_deref() == Some("password") => {
                Error::from(p.field("new"))
            }
            other => other,
        })?;
    app.store
        .set_password(&me.audit(), &auth.user, &hash, false, app.now())
        .await?;
    Ok(())
}

/// What a manager can do to an existing account.
#[derive(Debug, Clone, Copy)]
pub enum StaffAction {
    Unlock,
    Deactivate,
    Activate,
}

/// Applies `action` to account `id`, which must be of `me`'s site (an admin reaches every site).
pub async fn apply(app: &App, me: &Actor, id: i64, action: StaffAction) -> Result<()> {
    let target = app.store.user(id).await?;
    if me.role != Role::Admin {
        check_same_site(
            me.site_id,
            target.site_id,
            format_args!("staff account {id}"),
        )?;
    }
    if !me.role.may_grant(target.role) && me.user_id != target.id {
        return Err(DomainError::Forbidden(format!(
            "a {} may not change {} accounts",
            me.role, target.role
        ))
        .into());
    }
    let now = app.now();
    match action {
        StaffAction::Unlock => app.store.unlock_user(&me.audit(), &target, now).await?,
        StaffAction::Deactivate => {
            if target.id == me.user_id {
                return Err(
                    DomainError::Conflict("you cannot deactivate your own account".into()).into(),
                );
            }
            app.store
                .set_user_active(&me.audit(), &target, false, now)
                .await?
        }
        StaffAction::Activate => {
            app.store
                .set_user_active(&me.audit(), &target, true, now)
                .await?
        }
    }
    Ok(())
}

/// Sets `me`'s interface language (`zh-CN` or `en`).
pub async fn set_language(app: &App, me: &Actor, language: &str) -> Result<()> {
    Ok(app.store.set_language(me.user_id, language).await?)
}
