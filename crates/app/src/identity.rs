//! A client's identifying fields (name, national ID number, phone, address): checked once here
//! for the API and the page alike, then stored only encrypted (`anxin_storage::vault`).

use anxin_domain::{Code, DomainError, Permission, Problem};
use anxin_storage::clinic::Identity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// Longest name or address accepted (characters).
pub const MAX_FIELD_CHARS: usize = 200;

/// A required free-text field, trimmed: refused when empty (`reason.required`) or longer than
/// [`MAX_FIELD_CHARS`] characters.
pub(crate) fn bounded(field: &str, raw: &str) -> Result<String> {
    bounded_to(field, raw, MAX_FIELD_CHARS)
}

/// Longest free text of several lines (agreement rules), in characters.
pub const MAX_TEXT_CHARS: usize = 1000;

/// Like [`bounded`], with `max` characters.
pub(crate) fn bounded_to(field: &str, raw: &str, max: usize) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(Problem::new(Code::ReasonRequired).field(field).into());
    }
    if text.chars().count() > max {
        return Err(Problem::new(Code::TextTooLong)
            .field(field)
            .arg("max", max)
            .into());
    }
    Ok(text.to_owned())
}

/// Identifying fields as typed (each optional; at least one must be given).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// Resident identity card number: 17 digits and a digit or X.
    #[serde(default)]
    pub national_id: Option<String>,
    /// E.164 (`+8613812345678`) or a mainland mobile number (`13812345678`).
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

fn clean(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Checks the shape of a resident identity card number (17 digits and a digit or X).
pub fn check_national_id(id: &str) -> std::result::Result<(), Problem> {
    let ok = id.len() == 18
        && id[..17].chars().all(|c| c.is_ascii_digit())
        && id[17..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
    if ok {
        Ok(())
    } else {
        Err(Problem::new(Code::NationalIdInvalid).field("national_id"))
    }
}

/// Normalises a phone number, refusing by code with the field named.
pub fn check_phone(field: &str, raw: &str) -> std::result::Result<String, Problem> {
    anxin_domain::phone::normalize(field, raw)
        .map(|e| e.as_str().to_owned())
        .map_err(|_| {
            Problem::new(Code::PhoneInvalid)
                .field(field)
                .arg("value", raw.trim())
        })
}

/// Turns a request into the fields to store, or the first refusal.
pub fn validate(req: &IdentityRequest) -> std::result::Result<Identity, Problem> {
    let identity = Identity {
        name: clean(&req.name),
        national_id: clean(&req.national_id).map(|s| s.to_uppercase()),
        phone: clean(&req.phone),
        address: clean(&req.address),
    };
    if identity == Identity::default() {
        return Err(Problem::new(Code::IdentityEmpty).field("name"));
    }
    for (field, v) in [("name", &identity.name), ("address", &identity.address)] {
        if v.as_deref()
            .is_some_and(|s| s.chars().count() > MAX_FIELD_CHARS)
        {
            return Err(Problem::new(Code::TextTooLong)
                .field(field)
                .arg("max", MAX_FIELD_CHARS));
        }
    }
    if let Some(n) = &identity.national_id {
        check_national_id(n)?;
    }
    let phone = identity
        .phone
        .as_deref()
        .map(|p| check_phone("phone", p))
        .transpose()?;
    Ok(Identity { phone, ..identity })
}

/// Replaces a client's identifying fields (audited, names of the fields set only).
pub async fn set_identity(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &IdentityRequest,
) -> Result<()> {
    me.require(Permission::ClientWrite)?;
    let identity = validate(req)?;
    app.store
        .set_identity(&me.audit(), client_id, &identity, &app.vault, app.now())
        .await?;
    Ok(())
}

/// Parses a client id from a path or form.
pub fn client_id(raw: &str) -> std::result::Result<i64, DomainError> {
    crate::parse_id(raw)
}

/// A client's sex and year of birth (both optional), which the CDC's breakdowns count.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// male, female or unknown.
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub birth_year: Option<i32>,
}

/// A plausible year of birth: from 1920 to 10 years before `today`.
pub fn check_birth_year(y: i32, today: chrono::NaiveDate) -> std::result::Result<(), Problem> {
    use chrono::Datelike;
    let latest = today.year() - 10;
    if (1920..=latest).contains(&y) {
        Ok(())
    } else {
        Err(Problem::new(Code::BirthYearImplausible)
            .field("birth_year")
            .arg("year", y)
            .arg("from", 1920)
            .arg("to", latest))
    }
}

/// Records a client's sex and year of birth: a year from 1920 to 10 years before now.
pub async fn set_demographics(
    app: &App,
    me: &Actor,
    client_id: i64,
    req: &Demographics,
) -> Result<()> {
    me.require(anxin_domain::Permission::ClientWrite)?;
    let sex = anxin_domain::indicators::Sex::parse("sex", req.sex.as_deref())?;
    if let Some(y) = req.birth_year {
        check_birth_year(y, app.today())?;
    }
    app.store
        .set_demographics(&me.audit(), client_id, sex, req.birth_year, app.now())
        .await?;
    Ok(())
}

/// The clients of the actor's centre a search means: UICs containing the query, or, when none
/// does and the actor may read identities, clients with exactly that phone number or name
/// (keyed indexes). Audited.
pub async fn search_clients(app: &App, me: &Actor, query: &str) -> Result<Vec<crate::Client>> {
    me.require(Permission::ClientRead)?;
    let found = app
        .store
        .search_clients(&me.audit(), query, 300, app.now())
        .await?;
    let q = query.trim();
    if !found.is_empty() || !me.role.has(Permission::IdentityRead) {
        return Ok(found);
    }
    if let Ok(number) = anxin_domain::phone::normalize("q", q) {
        return Ok(app
            .store
            .find_by_phone(&me.audit(), number.as_str(), &app.vault, app.now())
            .await?);
    }
    if q.chars().any(char::is_alphabetic) {
        return Ok(app
            .store
            .find_by_name(&me.audit(), q, &app.vault, app.now())
            .await?);
    }
    Ok(found)
}

/// A client to enrol.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    pub uic: String,
    /// YYYY-MM-DD; defaults to today.
    #[serde(default)]
    pub enrolled_on: Option<String>,
}

/// Enrols a client at `me`'s centre, on today or a past day.
pub async fn enrol(app: &App, me: &Actor, req: &NewClientRequest) -> Result<crate::Client> {
    me.require(Permission::ClientWrite)?;
    let today = app.today();
    let enrolled_on = match req.enrolled_on.as_deref() {
        None | Some("") => today,
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            DomainError::invalid(
                "enrolled_on",
                format!("`{d}` is not a date like 2026-11-22"),
            )
        })?,
    };
    if enrolled_on > today {
        return Err(DomainError::invalid("enrolled_on", "must not be in the future").into());
    }
    Ok(app
        .store
        .create_client(&me.audit(), req.uic.trim(), enrolled_on, app.now())
        .await?)
}

/// The decrypted identifying fields of a client.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IdentityView {
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

impl From<Identity> for IdentityView {
    fn from(i: Identity) -> Self {
        IdentityView {
            name: i.name,
            national_id: i.national_id,
            phone: i.phone,
            address: i.address,
        }
    }
}

/// Decrypts client `client_id`'s identifying fields for `me` (audited as read with `purpose`).
pub async fn read(app: &App, me: &Actor, client_id: i64, purpose: &str) -> Result<IdentityView> {
    me.require(Permission::IdentityRead)?;
    let i = app
        .store
        .read_identity(&me.audit(), client_id, purpose, &app.vault, app.now())
        .await?;
    Ok(IdentityView::from(i))
}

/// Changes the phone number a client's codes go to: a staff action of its own, audited with
/// masked numbers, in one unit of work (read, write and both entries commit together).
/// Answers the new number masked (`138****8000`).
pub async fn change_phone(app: &App, me: &Actor, client_id: i64, phone: &str) -> Result<String> {
    me.require(Permission::ContactChange)?;
    let number = anxin_domain::phone::normalize("phone", phone)?;
    let mut work = app.store.begin_work(&me.audit(), app.now()).await?;
    let mut identity = work
        .read_identity(client_id, "phone change", &app.vault)
        .await?;
    let old = identity.phone.clone();
    identity.phone = Some(number.as_str().to_owned());
    work.set_identity(client_id, &identity, &app.vault).await?;
    app.failpoint("phone.after_identity")?;
    work.audit(
        anxin_storage::AuditEvent::new("client.phone.change", "client", client_id)
            .site(me.site_id)
            .reason(format!(
                "{} → {}",
                old.as_deref()
                    .map(anxin_domain::phone::mask)
                    .unwrap_or_else(|| "none".into()),
                number.masked()
            )),
    )
    .await?;
    work.commit().await?;
    Ok(number.masked())
}

/// Clients of `me`'s centre with exactly this name (after normalisation); audited.
pub async fn find_by_name(app: &App, me: &Actor, name: &str) -> Result<Vec<crate::Client>> {
    me.require(Permission::IdentityRead)?;
    if name.trim().is_empty() {
        return Err(DomainError::invalid("name", "must not be blank").into());
    }
    Ok(app
        .store
        .find_by_name(&me.audit(), name, &app.vault, app.now())
        .await?)
}

/// Indexes the phone numbers of records written before the keyed phone index existed, so the
/// window and the client search find them by phone; run once at start. Returns how many.
pub async fn index_phones(app: &App) -> Result<u64> {
    Ok(app.store.index_phones(&app.vault).await?)
}
