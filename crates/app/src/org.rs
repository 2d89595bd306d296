//! Organisation units as use cases: the administrator creates units (province → city →
//! district), places centres in them and scopes CDC and police accounts to a unit; the
//! indicators resolve what an outside account may ask for here ([`resolve`]): its own unit and
//! everything below it, and nothing else — a code outside the scope and a code that does not
//! exist get the same answer (`scope.outside`), audited as `indicators.scope.denied`.

use anxin_domain::org::{OrgLevel, Tree};
use anxin_domain::{Code, DomainError, Permission, Problem};
use anxin_storage::org_units::{NewOrgUnit, OrgUnit, SitePlace};
use anxin_storage::AuditEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Actor, App, Result};

/// A new organisation unit.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnitRequest {
    /// 2–16 capital letters, digits or `-`.
    pub code: String,
    pub name: String,
    /// province, city or district
    pub level: String,
    /// The code of the unit one level up (none for a top unit).
    #[serde(default)]
    pub parent: Option<String>,
    /// Its DHIS2 org-unit code; default its code.
    #[serde(default)]
    pub dhis2_code: Option<String>,
}

/// Places a centre in a unit.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// The centre's code.
    pub site: String,
    /// A city or district code; empty takes the centre out of the tree.
    #[serde(default)]
    pub unit: Option<String>,
    /// The centre's DHIS2 org-unit code; default its centre code.
    #[serde(default)]
    pub dhis2_code: Option<String>,
}

/// Scopes an outside (CDC or police) account to a unit.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub username: String,
    /// A unit's code; empty for the whole deployment.
    #[serde(default)]
    pub unit: Option<String>,
}

/// One unit as shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UnitView {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent: Option<String>,
    pub dhis2_code: String,
}

/// One centre and where it sits.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlaceView {
    pub site: String,
    pub name: String,
    pub unit: Option<String>,
    pub dhis2_code: String,
}

/// One outside account and its scope.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountScopeView {
    pub username: String,
    pub role: String,
    /// `None`: the whole deployment.
    pub unit: Option<String>,
}

/// The units, the centres' places and the outside accounts' scopes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrgView {
    pub units: Vec<UnitView>,
    pub centres: Vec<PlaceView>,
    pub accounts: Vec<AccountScopeView>,
}

fn code_of(units: &[OrgUnit], id: Option<i64>) -> Option<String> {
    id.and_then(|id| units.iter().find(|u| u.id == id))
        .map(|u| u.code.clone())
}

/// Everything the administrator's page shows.
pub async fn overview(app: &App, me: &Actor) -> Result<OrgView> {
    me.require(Permission::SiteManage)?;
    let units = app.store.org_units().await?;
    let places = app.store.site_places().await?;
    let accounts = app.store.outside_accounts().await?;
    Ok(OrgView {
        units: units
            .iter()
            .map(|u| UnitView {
                code: u.code.clone(),
                name: u.name.clone(),
                level: u.level.as_str().to_owned(),
                parent: code_of(&units, u.parent_id),
                dhis2_code: u.dhis2_code.clone(),
            })
            .collect(),
        centres: places
            .iter()
            .map(|p| PlaceView {
                site: p.code.clone(),
                name: p.name.clone(),
                unit: code_of(&units, p.unit_id),
                dhis2_code: p.dhis2_code.clone(),
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(|(_, username, role, unit)| AccountScopeView {
                username,
                role,
                unit: code_of(&units, unit),
            })
            .collect(),
    })
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A unit named in an administrator's form, or a refusal at `field`.
async fn unit_named(app: &App, field: &str, code: &str) -> Result<OrgUnit> {
    app.store.org_unit_by_code(code).await?.ok_or_else(|| {
        Problem::new(Code::OrgUnitUnknown)
            .field(field)
            .arg("code", code.trim())
            .into()
    })
}

/// Creates a unit.
pub async fn create_unit(app: &App, me: &Actor, req: &NewUnitRequest) -> Result<UnitView> {
    me.require(Permission::SiteManage)?;
    let level: OrgLevel = req.level.parse()?;
    let parent = match blank(&req.parent) {
        Some(code) => Some(unit_named(app, "parent", code).await?),
        None => None,
    };
    let u = app
        .store
        .create_org_unit(
            &me.audit(),
            &NewOrgUnit {
                code: &req.code,
                name: &req.name,
                level,
                parent: parent.as_ref(),
                dhis2_code: blank(&req.dhis2_code),
            },
            app.now(),
        )
        .await?;
    Ok(UnitView {
        code: u.code,
        name: u.name,
        level: u.level.as_str().to_owned(),
        parent: parent.map(|p| p.code),
        dhis2_code: u.dhis2_code,
    })
}

/// Places a centre in a city or district (or takes it out).
pub async fn place_centre(app: &App, me: &Actor, req: &PlaceRequest) -> Result<()> {
    me.require(Permission::SiteManage)?;
    let site = app.store.site_by_code(&req.site).await.map_err(|_| {
        crate::Error::from(
            Problem::new(Code::ChoiceUnknown)
                .field("site")
                .arg("value", req.site.trim()),
        )
    })?;
    let unit = match blank(&req.unit) {
        Some(code) => Some(unit_named(app, "unit", code).await?),
        None => None,
    };
    app.store
        .place_site(
            &me.audit(),
            site.id,
            unit.as_ref(),
            blank(&req.dhis2_code),
            app.now(),
        )
        .await?;
    Ok(())
}

/// Scopes a CDC or police account to a unit (or to the whole deployment).
pub async fn scope_account(app: &App, me: &Actor, req: &ScopeRequest) -> Result<()> {
    me.require(Permission::SiteManage)?;
    let user = app
        .store
        .user_auth(req.username.trim())
        .await?
        .map(|a| a.user)
        .ok_or_else(|| {
            crate::Error::from(
                Problem::new(Code::ChoiceUnknown)
                    .field("username")
                    .arg("value", req.username.trim()),
            )
        })?;
    if !user.role.is_outside() {
        return Err(Problem::new(Code::OrgUnitScopeInsideRole)
            .field("username")
            .arg("role", user.role.as_str())
            .into());
    }
    let unit = match blank(&req.unit) {
        Some(code) => Some(unit_named(app, "unit", code).await?),
        None => None,
    };
    app.store
        .scope_user(&me.audit(), user.id, unit.as_ref(), app.now())
        .await?;
    Ok(())
}

/// An organisation unit a report covers: its id, code, DHIS2 code and the centres below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitScope {
    pub id: i64,
    pub code: String,
    pub dhis2_code: String,
    pub sites: Vec<i64>,
}

/// Where a report is about: one centre, a unit, or (`(None, None)`) the whole deployment.
pub type Place = (Option<(i64, String)>, Option<UnitScope>);

fn unit_scope(u: &OrgUnit, tree: &Tree) -> UnitScope {
    UnitScope {
        id: u.id,
        code: u.code.clone(),
        dhis2_code: u.dhis2_code.clone(),
        sites: tree.sites_below(u.id),
    }
}

/// The refusal of a code outside the caller's scope (or of no unit or centre at all: one
/// answer for both), audited.
async fn outside(app: &App, me: &Actor, field: &str, code: &str) -> Result<Place> {
    app.store
        .audit(
            &me.audit(),
            AuditEvent::new("indicators.scope.denied", "indicators", code)
                .reason(format!("{field} {code} is outside the account's scope")),
            app.now(),
        )
        .await?;
    Err(Problem::new(Code::ScopeOutside).field(field).into())
}

/// The part of a report's scope that says where: `site=CODE` or `unit=CODE` as asked by `me`.
/// A centre's staff see their own centre only. An outside account scoped to a unit asks for
/// that unit (the default) or a centre or unit below it; an unscoped one for any centre or
/// unit, or the deployment (`site=all`, the default).
pub async fn resolve(
    app: &App,
    me: &Actor,
    site: Option<&str>,
    unit: Option<&str>,
) -> Result<Place> {
    let clean = |s: Option<&str>| {
        s.map(|s| s.trim().to_uppercase())
            .filter(|s| !s.is_empty() && s != "ALL" && s != "全部")
    };
    let (site, unit) = (clean(site), clean(unit));
    if !me.role.is_outside() {
        let mine = app.store.site(me.site_id).await?;
        if let Some(code) = &unit {
            return outside(app, me, "unit", code).await;
        }
        return match site {
            Some(code) if code != mine.code => Err(DomainError::Forbidden(
                "a centre's staff see the indicators of their own centre only".into(),
            )
            .into()),
            _ => Ok((Some((mine.id, mine.code)), None)),
        };
    }
    let mine = app.store.user_org_unit(me.user_id).await?;
    let tree = app.store.org_tree().await?;
    if let Some(code) = site {
        let found = app.store.site_by_code(&code).await.ok();
        return match (found, mine) {
            (Some(s), None) => Ok((Some((s.id, s.code)), None)),
            (Some(s), Some(root)) if tree.site_within(s.id, root) => {
                Ok((Some((s.id, s.code)), None))
            }
            (None, None) => {
                Err(DomainError::invalid("site", format!("no centre has the code `{code}`")).into())
            }
            _ => outside(app, me, "site", &code).await,
        };
    }
    if let Some(code) = unit {
        let found = app.store.org_unit_by_code(&code).await?;
        return match (found, mine) {
            (Some(u), None) => Ok((None, Some(unit_scope(&u, &tree)))),
            (Some(u), Some(root)) if tree.is_within(u.id, root) => {
                Ok((None, Some(unit_scope(&u, &tree))))
            }
            (None, None) => Err(Problem::new(Code::OrgUnitUnknown)
                .field("unit")
                .arg("code", &code)
                .into()),
            _ => outside(app, me, "unit", &code).await,
        };
    }
    match mine {
        None => Ok((None, None)),
        Some(root) => {
            let units = app.store.org_units().await?;
            let u = units
                .iter()
                .find(|u| u.id == root)
                .ok_or_else(|| DomainError::NotFound(format!("org unit {root}")))?;
            Ok((None, Some(unit_scope(u, &tree))))
        }
    }
}

/// The centres of a report's place, with their DHIS2 codes: the one centre, the centres of the
/// unit, or every centre.
pub async fn centres_of(app: &App, place: &Place) -> Result<Vec<SitePlace>> {
    let all = app.store.site_places().await?;
    Ok(match place {
        (Some((id, _)), _) => all.into_iter().filter(|p| p.site_id == *id).collect(),
        (None, Some(u)) => all
            .into_iter()
            .filter(|p| u.sites.contains(&p.site_id))
            .collect(),
        (None, None) => all,
    })
}

/// The units strictly below `unit` (for the DHIS2 export), with their centres.
pub async fn units_below(app: &App, unit: &UnitScope) -> Result<Vec<UnitScope>> {
    let tree = app.store.org_tree().await?;
    let units = app.store.org_units().await?;
    let below = tree.units_below(unit.id);
    Ok(units
        .iter()
        .filter(|u| u.id != unit.id && below.contains(&u.id))
        .map(|u| unit_scope(u, &tree))
        .collect())
}

/// The centres whose police queue an officer holds: the centres in and below the unit the
/// account is scoped to, or (unscoped) the officer's own centre, as before units existed.
pub async fn police_sites(app: &App, me: &Actor) -> Result<Vec<i64>> {
    match app.store.user_org_unit(me.user_id).await? {
        Some(unit) => Ok(app.store.org_tree().await?.sites_below(unit)),
        None => Ok(vec![me.site_id]),
    }
}

/// `me` acting at centre `site` (one of [`police_sites`]): the police queue's checks and the
/// audit trail name the centre whose record is read.
pub fn at_site(me: &Actor, site: i64) -> anxin_storage::Actor {
    let mut a = me.audit();
    a.site_id = Some(site);
    a
}
