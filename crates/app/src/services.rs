//! The one-stop shop around treatment: service encounters (needle exchange, naloxone, tests,
//! ARV referrals and their outcomes, counselling, …) for enrolled clients and anonymous
//! outreach contacts, and therapeutic-community episodes.

use anxin_domain::indicators::Sex;
use anxin_domain::services::{ArvOutcome, Service, TcEpisode};
use anxin_domain::{DomainError, Permission};
use anxin_storage::services::{Encounter, NewEncounter, StoredEpisode, Subject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{parse_date, Actor, App, Result};

/// A service encounter to record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncounterRequest {
    /// An enrolled client of my centre…
    #[serde(default)]
    pub client_id: Option<i64>,
    /// …or an anonymous outreach contact's UIC.
    #[serde(default)]
    pub uic: Option<String>,
    /// For anonymous contacts: male, female or unknown.
    #[serde(default)]
    pub sex: Option<String>,
    /// For anonymous contacts.
    #[serde(default)]
    pub birth_year: Option<i32>,
    /// Day of the encounter, `YYYY-MM-DD` (default today).
    #[serde(default)]
    pub on: Option<String>,
    /// The service, tagged by `kind`: e.g. `{"kind": "needle_exchange", "given": 20,
    /// "returned": 18}`, `{"kind": "hiv_test", "tested_on": "2026-11-20", "result": "negative",
    /// "pre_counselled": true, "post_counselled": true, "told_result": true}`,
    /// `{"kind": "arv_referral", "referred_on": "…", "outcome": "linked", "outcome_on": "…"}`.
    pub service: Value,
}

/// The outcome of an ARV referral, learned after it was recorded.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArvOutcomeRequest {
    /// pending, linked, not_linked or lost.
    pub outcome: String,
    /// The day treatment started (required for `linked`), or the day the outcome was known;
    /// `YYYY-MM-DD`, not before the referral.
    #[serde(default)]
    pub outcome_on: Option<String>,
}

/// An ARV outcome by its stable name (as in the encounter JSON); refused naming `outcome`.
fn parse_arv_outcome(raw: &str) -> std::result::Result<ArvOutcome, DomainError> {
    serde_json::from_value(Value::String(raw.trim().to_owned()))
        .map_err(|_| DomainError::invalid("outcome", "use pending, linked, not_linked or lost"))
}

/// The stable name of an ARV outcome.
pub fn arv_outcome_name(o: ArvOutcome) -> &'static str {
    match o {
        ArvOutcome::Pending => "pending",
        ArvOutcome::Linked => "linked",
        ArvOutcome::NotLinked => "not_linked",
        ArvOutcome::Lost => "lost",
    }
}

/// A therapeutic-community episode (new, or the new state of one).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcRequest {
    /// Only when opening an episode.
    #[serde(default)]
    pub client_id: Option<i64>,
    pub admitted_on: String,
    /// entry, primary, re_entry, aftercare.
    pub phase: String,
    #[serde(default)]
    pub left_on: Option<String>,
    /// completed or dropped_out.
    #[serde(default)]
    pub exit: Option<String>,
    /// 6-month follow-up urine after leaving: true is negative.
    #[serde(default)]
    pub urine_negative_6m: Option<bool>,
    #[serde(default)]
    pub urine_negative_12m: Option<bool>,
}

/// The JSON shape of a service (schema only; [`Service`] writes it): `kind` names the service,
/// the other fields depend on it (needle_exchange: given, returned, reason; naloxone: kits;
/// condoms: count; peer_education: educator, topic; hiv_test, arv_referral, …).
#[derive(JsonSchema)]
#[schemars(rename = "Service")]
#[allow(dead_code)]
struct ServiceShape {
    kind: String,
}

/// The JSON shape of a therapeutic-community episode (schema only; [`TcEpisode`] writes it).
#[derive(JsonSchema)]
#[schemars(rename = "TcEpisode")]
#[allow(dead_code)]
struct TcEpisodeShape {
    admitted_on: chrono::NaiveDate,
    /// entry, primary, re_entry or aftercare
    phase: String,
    left_on: Option<chrono::NaiveDate>,
    /// completed or dropped_out
    exit: Option<String>,
    /// Urine at 6 months after leaving: `true` is negative for non-prescribed opioids.
    urine_negative_6m: Option<bool>,
    urine_negative_12m: Option<bool>,
}

/// A service encounter as stored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EncounterView {
    pub id: i64,
    pub site_id: i64,
    /// The enrolled client, or `null` for an outreach contact.
    pub client_id: Option<i64>,
    /// The outreach contact's UIC.
    pub uic: Option<String>,
    pub on: chrono::NaiveDate,
    #[schemars(with = "ServiceShape")]
    pub service: Service,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Encounter> for EncounterView {
    fn from(e: &Encounter) -> Self {
        EncounterView {
            id: e.id,
            site_id: e.site_id,
            client_id: e.client_id,
            uic: e.uic.clone(),
            on: e.on,
            service: e.service.clone(),
            created_at: e.created_at,
        }
    }
}

/// A client's service encounters.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EncounterList {
    pub encounters: Vec<EncounterView>,
}

/// A therapeutic-community episode as stored.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EpisodeView {
    pub id: i64,
    pub site_id: i64,
    pub client_id: i64,
    #[schemars(with = "TcEpisodeShape")]
    pub episode: TcEpisode,
}

impl From<&StoredEpisode> for EpisodeView {
    fn from(e: &StoredEpisode) -> Self {
        EpisodeView {
            id: e.id,
            site_id: e.site_id,
            client_id: e.client_id,
            episode: e.episode.clone(),
        }
    }
}

/// The therapeutic-community episodes of a centre.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EpisodeList {
    pub episodes: Vec<EpisodeView>,
}

fn episode(req: &TcRequest) -> std::result::Result<TcEpisode, DomainError> {
    use anxin_domain::services::{TcExit, TcPhase};
    Ok(TcEpisode {
        admitted_on: parse_date("admitted_on", &req.admitted_on)?,
        phase: TcPhase::parse("phase", req.phase.trim())?,
        left_on: req
            .left_on
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_date("left_on", s))
            .transpose()?,
        exit: req
            .exit
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| TcExit::parse("exit", s.trim()))
            .transpose()?,
        urine_negative_6m: req.urine_negative_6m,
        urine_negative_12m: req.urine_negative_12m,
    })
}

/// Checks an outcome update's fields and stores it (API and form share this).
pub async fn set_arv_outcome(
    app: &App,
    me: &Actor,
    id: i64,
    outcome: &str,
    outcome_on: Option<&str>,
) -> Result<anxin_storage::services::Encounter> {
    me.require(Permission::ServiceRecord)?;
    let outcome = parse_arv_outcome(outcome)?;
    let outcome_on = outcome_on
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_date("outcome_on", s))
        .transpose()?;
    Ok(app
        .store
        .set_arv_outcome(&me.audit(), id, outcome, outcome_on, app.today(), app.now())
        .await?)
}

/// Records a service encounter (its service already read from the request's `service`) for an
/// enrolled client of `me`'s centre or an anonymous outreach contact.
pub async fn record_encounter(
    app: &App,
    me: &Actor,
    req: &EncounterRequest,
    service: Service,
) -> Result<EncounterView> {
    me.require(Permission::ServiceRecord)?;
    let today = app.today();
    let on = crate::treatment::past_or_today("on", req.on.as_deref(), today)?;
    let subject = match (req.client_id, req.uic.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(DomainError::invalid(
                "uic",
                "give either client_id (enrolled client) or uic (outreach contact), not both",
            )
            .into())
        }
        (None, None) => {
            return Err(DomainError::invalid(
                "client_id",
                "give client_id (enrolled client) or uic (outreach contact)",
            )
            .into())
        }
        (Some(id), None) => {
            if req.sex.is_some() || req.birth_year.is_some() {
                return Err(DomainError::invalid(
                    "sex",
                    "an enrolled client's sex and birth year are set on the client record",
                )
                .into());
            }
            Subject::Client(id)
        }
        (None, Some(uic)) => Subject::Anonymous {
            uic: uic.to_owned(),
            sex: Sex::parse("sex", req.sex.as_deref())?,
            birth_year: req.birth_year,
        },
    };
    let e = app
        .store
        .record_encounter(
            &me.audit(),
            &NewEncounter {
                subject,
                on,
                service,
            },
            today,
            app.now(),
        )
        .await?;
    Ok(EncounterView::from(&e))
}

/// A client's service encounters (the record read is audited first, site-scoped).
pub async fn client_encounters(app: &App, me: &Actor, client_id: i64) -> Result<EncounterList> {
    me.require(Permission::ServiceRecord)?;
    app.store
        .read_client(&me.audit(), client_id, "service encounters", app.now())
        .await?;
    let list = app.store.client_encounters(&me.audit(), client_id).await?;
    Ok(EncounterList {
        encounters: list.iter().map(EncounterView::from).collect(),
    })
}

/// Opens a therapeutic-community episode for the client the request names.
pub async fn open_tc(app: &App, me: &Actor, req: &TcRequest) -> Result<EpisodeView> {
    me.require(Permission::ServiceRecord)?;
    let client_id = req
        .client_id
        .ok_or_else(|| DomainError::invalid("client_id", "name the resident's client id"))?;
    let ep = episode(req)?;
    let stored = app
        .store
        .open_tc_episode(&me.audit(), client_id, &ep, app.today(), app.now())
        .await?;
    Ok(EpisodeView::from(&stored))
}

/// Sets the new state of therapeutic-community episode `id` (its resident does not change).
pub async fn update_tc(app: &App, me: &Actor, id: i64, req: &TcRequest) -> Result<EpisodeView> {
    me.require(Permission::ServiceRecord)?;
    if req.client_id.is_some() {
        return Err(
            DomainError::invalid("client_id", "an episode's resident does not change").into(),
        );
    }
    let ep = episode(req)?;
    let stored = app
        .store
        .update_tc_episode(&me.audit(), id, &ep, app.today(), app.now())
        .await?;
    Ok(EpisodeView::from(&stored))
}

/// The therapeutic-community episodes of `me`'s centre.
pub async fn tc_episodes(app: &App, me: &Actor) -> Result<EpisodeList> {
    me.require(Permission::ServiceRecord)?;
    let list = app.store.tc_episodes(&me.audit()).await?;
    Ok(EpisodeList {
        episodes: list.iter().map(EpisodeView::from).collect(),
    })
}

/// An episode as the therapeutic-community page lists it: by its resident's UIC.
#[derive(Debug, Clone)]
pub struct ListedEpisode {
    pub episode: EpisodeView,
    pub uic: String,
}

/// The centre's therapeutic-community episodes, each with its resident's UIC.
pub async fn tc_listed(app: &App, me: &Actor) -> Result<Vec<ListedEpisode>> {
    let list = tc_episodes(app, me).await?.episodes;
    let ids: Vec<i64> = list.iter().map(|e| e.client_id).collect();
    let uics = app.store.uics_at_site(me.site_id, &ids).await?;
    Ok(list
        .into_iter()
        .map(|episode| ListedEpisode {
            uic: uics.get(&episode.client_id).cloned().unwrap_or_default(),
            episode,
        })
        .collect())
}

/// Admits a resident found by UIC at `me`'s centre (any case, dashes optional), as the page
/// does; `req.client_id` is ignored.
pub async fn open_tc_by_uic(
    app: &App,
    me: &Actor,
    uic: &str,
    req: &TcRequest,
) -> Result<ListedEpisode> {
    me.require(Permission::ServiceRecord)?;
    let c = crate::dispensing::client_here(app, me, uic, "uic").await?;
    let req = TcRequest {
        client_id: Some(c.id),
        ..req.clone()
    };
    let episode = open_tc(app, me, &req).await?;
    Ok(ListedEpisode {
        episode,
        uic: c.uic,
    })
}

/// A service as the services page records it: for an enrolled client of the centre (by UIC)
/// or, when `outreach` is set, for an outreach contact known only by the UIC they give.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub uic: String,
    pub outreach: bool,
    /// Outreach contacts only: male, female or unknown.
    pub sex: Option<String>,
    /// Outreach contacts only.
    pub birth_year: Option<i32>,
    /// `YYYY-MM-DD`, default today.
    pub on: Option<String>,
    pub service: Service,
}

/// Records a service from the services page. An enrolled client is found by UIC at `me`'s
/// centre (any case, dashes optional); a UIC no client has is refused at `uic` unless the entry
/// is for an outreach contact.
pub async fn record_by_uic(app: &App, me: &Actor, entry: &ServiceEntry) -> Result<EncounterView> {
    me.require(Permission::ServiceRecord)?;
    let typed = entry.uic.trim();
    if typed.is_empty() {
        return Err(anxin_domain::Problem::new(anxin_domain::Code::UicMalformed)
            .field("uic")
            .arg("uic", typed)
            .into());
    }
    let req = if entry.outreach {
        EncounterRequest {
            client_id: None,
            uic: Some(typed.to_owned()),
            sex: entry.sex.clone().filter(|s| !s.trim().is_empty()),
            birth_year: entry.birth_year,
            on: entry.on.clone(),
            service: Value::Null,
        }
    } else {
        let c = crate::dispensing::client_here(app, me, typed, "uic").await?;
        EncounterRequest {
            client_id: Some(c.id),
            uic: None,
            sex: None,
            birth_year: None,
            on: entry.on.clone(),
            service: Value::Null,
        }
    };
    record_encounter(app, me, &req, entry.service.clone()).await
}

/// An encounter as the services page lists it: by UIC, never by internal id.
#[derive(Debug, Clone)]
pub struct ListedEncounter {
    pub encounter: Encounter,
    /// The enrolled client's UIC, or the outreach contact's.
    pub uic: String,
    /// An outreach contact, not an enrolled client.
    pub outreach: bool,
}

/// The latest `limit` encounters of `me`'s centre, of one kind or all.
pub async fn recent(
    app: &App,
    me: &Actor,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<ListedEncounter>> {
    me.require(Permission::ServiceRecord)?;
    Ok(app
        .store
        .site_encounters(&me.audit(), kind, limit)
        .await?
        .into_iter()
        .map(|(encounter, uic)| ListedEncounter {
            outreach: encounter.client_id.is_none(),
            encounter,
            uic,
        })
        .collect())
}
