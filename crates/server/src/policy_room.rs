//! The joint policy room's pages and API (`anxin_app::policy_room`): `/takehome/proposals`
//! lists the site's versions and holds the form of a new proposal; `/takehome/proposals/{id}`
//! shows one with its diff against the version before, its preview on the centre's own clients
//! (aggregate and suppressed for the CDC and the police; the UICs that change tier for staff
//! with clinical access), its signatures and the form to sign, and, while nobody has signed, the
//! form to edit it. Refusals come back at their field with what was typed kept.

use std::collections::HashMap;

use anxin_app::policy_room::{
    self as uc, Count, ProposalCreated, ProposalPage, ProposalRequest, ProposalState, ProposalView,
    SignRequest, TierInput,
};
use anxin_domain::policy_room::Party;
use anxin_domain::takehome::Policy;
use anxin_domain::{Access, DomainError, Permission, Problem};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::flash::{self, Message, Tone};
use crate::json::ApiJson;
use crate::policy::{page_field, read_form, tier_fields, tier_inputs, tiers_table, THRESHOLDS};
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{
    field_error, flash, form_notice, layout, on_path_id, refused_form, Flash, WebResult, T,
};

/// The new proposal's form id.
const NEW: &str = "proposal";
/// The edit form's id.
const EDIT: &str = "proposal-edit";
/// The signature form's id.
const SIGN: &str = "proposal-sign";

fn party_label(t: &T<'_>, p: Party) -> String {
    t.s(&format!("room-party-{}", p.as_str()))
}

fn state_label(t: &T<'_>, s: ProposalState) -> String {
    t.s(match s {
        ProposalState::Open => "room-state-open",
        ProposalState::Signing => "room-state-signing",
        ProposalState::Signed => "room-state-signed",
        ProposalState::InForce => "room-state-in-force",
        ProposalState::Superseded => "room-state-superseded",
    })
}

fn state_name(s: ProposalState) -> &'static str {
    match s {
        ProposalState::Open => "open",
        ProposalState::Signing => "signing",
        ProposalState::Signed => "signed",
        ProposalState::InForce => "in_force",
        ProposalState::Superseded => "superseded",
    }
}

fn policy_of_view(v: &ProposalView) -> Policy {
    Policy {
        version: v.policy.version.clone(),
        approval_valid_days: v.policy.approval_valid_days,
        tiers: v
            .policy
            .tiers
            .iter()
            .map(|x| anxin_domain::takehome::Tier {
                days: x.days,
                min_days_in_treatment: x.min_days_in_treatment,
                min_attendance_30: x.min_attendance_30,
                min_attendance_90: x.min_attendance_90,
                last_urine_negative: x.last_urine_negative,
            })
            .collect(),
    }
}

/// The form of a proposal (new or edit): version, approval validity, start, rationale, tiers.
fn editor(
    t: &T<'_>,
    me: &CurrentUser,
    f: &Flash,
    (form_id, action, button): (&str, &str, &str),
    start: &Policy,
    (rationale, from): (&str, &str),
) -> Markup {
    let refused = f.value(form_id, "version").is_some();
    let v = |field: &str, fallback: String| {
        if refused {
            f.value(form_id, field)
                .map(str::to_owned)
                .unwrap_or_default()
        } else {
            fallback
        }
    };
    let mut fields = vec![
        "version".to_owned(),
        "approval_valid_days".to_owned(),
        "rationale".to_owned(),
        "effective_from".to_owned(),
    ];
    fields.extend(tier_fields());
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let invalid = |field: &str| f.error_at(form_id, field).map(|_| "true");
    html! {
        form method="post" action=(action) id=(form_id) {
            input type="hidden" name="csrf" value=(me.csrf_token);
            (form_notice(f, form_id, &fields))
            label { (t.s("room-version")) input name="version" id={(form_id) "-version"} value=(v("version", start.version.clone())) required aria-invalid=[invalid("version")]; (field_error(f, form_id, "version")) }
            label { (t.s("room-effective-from")) input type="date" name="effective_from" id={(form_id) "-effective-from"} value=(v("effective_from", from.to_owned())) required aria-invalid=[invalid("effective_from")]; (field_error(f, form_id, "effective_from")) }
            label { (t.s("policy-approval")) input name="approval_valid_days" inputmode="numeric" value=(v("approval_valid_days", start.approval_valid_days.to_string())) aria-invalid=[invalid("approval_valid_days")]; (field_error(f, form_id, "approval_valid_days")) }
            label { (t.s("room-rationale")) textarea name="rationale" id={(form_id) "-rationale"} rows="3" aria-invalid=[invalid("rationale")] { (v("rationale", rationale.to_owned())) } (field_error(f, form_id, "rationale")) }
            (tier_inputs(t, f, form_id, start))
            button type="submit" { (button) }
        }
    }
}

async fn list_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let actor = me.app_actor();
    let proposals = uc::proposals(&st.app, &actor).await?;
    let start = match proposals.first() {
        Some(p) => Policy {
            version: String::new(),
            ..policy_of_view(p)
        },
        None => Policy {
            version: String::new(),
            ..Policy::default()
        },
    };
    let when = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&st.settings.utc_offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let today = st.app.today().to_string();
    Ok(layout(
        &t,
        &t.s("room-title"),
        Some(&me),
        html! {
            h1 { (t.s("room-title")) }
            p.muted { (t.s("room-help")) }
            (flash(&f))
            @if proposals.is_empty() {
                p.muted id="room-none" { (t.s("room-none")) }
            } @else {
                table.list id="room-proposals" {
                    thead { tr {
                        th { (t.s("room-col-version")) } th { (t.s("room-col-from")) } th { (t.s("room-col-by")) }
                        th { (t.s("room-col-state")) } th { (t.s("room-col-signatures")) }
                    } }
                    tbody {
                        @for p in &proposals {
                            tr data-version=(p.policy.version) data-state=(state_name(p.state)) {
                                td { a href={"/takehome/proposals/" (p.id)} { (p.policy.version) } }
                                td { (p.effective_from) }
                                td { (p.proposed_by) " · " (when(p.proposed_at)) }
                                td { (state_label(&t, p.state)) }
                                td { (p.signatures.iter().map(|s| party_label(&t, s.party)).collect::<Vec<_>>().join(" · ")) }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { (t.s("room-new")) }
                p.muted { (t.s("room-new-help")) }
                (editor(&t, &me, &f, (NEW, "/takehome/proposals", &t.s("room-propose")), &start, ("", &today)))
            }
        },
    ))
}

fn count(t: &T<'_>, c: &Count) -> Markup {
    html! {
        @match c.value {
            Some(v) => span data-count=(v) { (v) },
            None => span.muted data-suppressed="true" { (t.s("room-suppressed")) },
        }
    }
}

fn pct(t: &T<'_>, v: Option<f64>, suppressed: bool) -> Markup {
    html! {
        @match v {
            Some(v) => span data-pct=(v) { (format!("{v:.1}%")) },
            None if suppressed => span.muted data-suppressed="true" { (t.s("room-suppressed")) },
            None => span.muted { "—" },
        }
    }
}

fn field_label(t: &T<'_>, field: &str) -> String {
    THRESHOLDS
        .iter()
        .find(|(name, _)| *name == field)
        .map_or_else(|| field.to_owned(), |(_, label)| t.s(label))
}

async fn proposal_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    f: Flash,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let id = anxin_app::parse_id(&id).map_err(AppError::from)?;
    let ProposalPage {
        proposal: p,
        preview,
        may_sign,
        may_edit,
    } = uc::page(&st.app, &me.app_actor(), id).await?;
    let when = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&st.settings.utc_offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let policy = policy_of_view(&p);
    let action = format!("/takehome/proposals/{id}");
    let sign_action = format!("/takehome/proposals/{id}/sign");
    let threshold = st.app.settings.suppression_threshold.to_string();
    let days_label = |d: u8| {
        if d == 0 {
            t.s("room-not-eligible")
        } else {
            t.a("policy-days-n", &[("n", &d.to_string())])
        }
    };
    Ok(layout(
        &t,
        &t.a("room-proposal-title", &[("version", &p.policy.version)]),
        Some(&me),
        html! {
            p { a href="/takehome/proposals" { (t.s("room-title")) } }
            h1 { (t.a("room-proposal-title", &[("version", &p.policy.version)])) }
            (flash(&f))
            p id="proposal-state" data-state=(state_name(p.state)) { (state_label(&t, p.state)) }
            p { (t.a("room-proposed-by", &[("by", &p.proposed_by), ("at", &when(p.proposed_at))])) }
            p id="proposal-effective" { (t.a("room-effective", &[("date", &p.effective_from.to_string())])) }
            h2 { (t.s("room-rationale")) }
            p id="proposal-rationale" { (p.rationale) }
            (tiers_table(&t, &policy, "proposal-tiers"))
            p { (t.a("policy-approval-days", &[("n", &p.policy.approval_valid_days.to_string())])) }
            h2 { (t.a("room-diff", &[("version", &p.previous_version)])) }
            @if p.diff.is_empty() {
                p.muted id="proposal-diff" { (t.s("room-diff-none")) }
            } @else {
                ul id="proposal-diff" {
                    @for c in &p.diff {
                        @let days = c.days.map(|d| d.to_string()).unwrap_or_default();
                        @let from = c.from.clone().unwrap_or_default();
                        @let to = c.to.clone().unwrap_or_default();
                        li data-days=(days) data-field=(c.field) {
                            @if c.field == "approval_valid_days" {
                                (t.a("room-diff-approval", &[("from", &from), ("to", &to)]))
                            } @else if c.field == "tier" && c.to.is_some() {
                                (t.a("room-diff-added", &[("days", &days)]))
                            } @else if c.field == "tier" {
                                (t.a("room-diff-removed", &[("days", &days)]))
                            } @else {
                                (t.a("room-diff-line", &[("days", &days), ("field", &field_label(&t, &c.field)), ("from", &from), ("to", &to)]))
                            }
                        }
                    }
                }
            }
            section.card id="proposal-preview" {
                h2 { (t.s("room-preview")) }
                p.muted { (t.a("room-preview-help", &[("version", &preview.in_force_version), ("threshold", &threshold)])) }
                table.list id="preview-tiers" {
                    thead { tr { th { (t.s("room-tier")) } th { (t.s("room-now")) } th { (t.s("room-under-proposal")) } } }
                    tbody {
                        @for r in &preview.tiers {
                            tr data-days=(r.days) {
                                td { (days_label(r.days)) }
                                td.now { (count(&t, &r.now)) }
                                td.proposed { (count(&t, &r.proposed)) }
                            }
                        }
                    }
                }
                dl {
                    dt { (t.s("room-clients")) } dd id="preview-clients" { (count(&t, &preview.clients)) }
                    dt { (t.s("room-changing")) } dd id="preview-changing" { (count(&t, &preview.changing)) }
                    dt { (t.s("room-extra-days")) } dd id="preview-extra-days" { (count(&t, &preview.extra_box_days_per_week)) }
                    dt { (t.s("room-extra-mg")) } dd id="preview-extra-mg" { (count(&t, &preview.extra_mg_per_week)) }
                }
                @if let Some(changes) = &preview.changes {
                    h3 { (t.s("room-changes")) }
                    @if changes.is_empty() {
                        p.muted id="preview-changes" { (t.s("room-changes-none")) }
                    } @else {
                        ul id="preview-changes" {
                            @for c in changes {
                                li data-uic=(c.uic) { (t.a("room-change-line", &[("uic", &c.uic), ("from", &c.now_days.to_string()), ("to", &c.proposed_days.to_string())])) }
                            }
                        }
                    }
                }
            }
            section.card id="proposal-backtest" {
                h2 { (t.a("room-backtest", &[("from", &preview.back_test.from.to_string()), ("to", &preview.back_test.to.to_string())])) }
                p.muted { (t.s("room-backtest-help")) }
                table.list id="backtest" {
                    thead { tr {
                        th {}
                        th { (t.s("room-bt-clients")) } th { (t.s("room-bt-attendance")) } th { (t.s("room-bt-urine")) }
                        th { (t.s("room-bt-unopened")) } th { (t.s("room-bt-lost")) }
                    } }
                    tbody {
                        @for (key, label, g) in [("newly", "room-bt-newly", &preview.back_test.newly_admitted), ("already", "room-bt-already", &preview.back_test.already_admitted)] {
                            tr data-group=(key) {
                                th { (t.s(label)) }
                                td.clients { (count(&t, &g.clients)) }
                                td.attendance { (pct(&t, g.attendance_pct, g.clients.suppressed)) }
                                td.urine { (pct(&t, g.urine_negative_pct, g.clients.suppressed)) }
                                td.unopened { (count(&t, &g.boxes_returned_unopened)) }
                                td.lost { (count(&t, &g.boxes_lost)) }
                            }
                        }
                    }
                }
            }
            section.card id="proposal-signatures" {
                h2 { (t.s("room-signatures")) }
                ul {
                    @for party in Party::ALL {
                        @match p.signatures.iter().find(|s| s.party == party) {
                            Some(s) => li data-party=(party.as_str()) data-signed="true" {
                                (t.a("room-signed-line", &[("party", &party_label(&t, party)), ("by", &s.signed_by), ("at", &when(s.signed_at))]))
                                @if !s.comment.is_empty() { " — " (s.comment) }
                            },
                            None => li data-party=(party.as_str()) data-signed="false" { (t.a("room-unsigned-line", &[("party", &party_label(&t, party))])) },
                        }
                    }
                }
                @if p.signatures.len() == Party::ALL.len() {
                    p id="signed-by-three" { strong { (t.s("room-signed-by-three")) } }
                }
                @if let Some(party) = may_sign {
                    form method="post" action=(sign_action) id=(SIGN) {
                        input type="hidden" name="csrf" value=(me.csrf_token);
                        (form_notice(&f, SIGN, &["comment"]))
                        label { (t.s("room-comment")) input name="comment" id="sign-comment" value=(f.value(SIGN, "comment").unwrap_or_default()); (field_error(&f, SIGN, "comment")) }
                        button type="submit" id="sign-button" { (t.a("room-sign", &[("party", &party_label(&t, party))])) }
                    }
                } @else {
                    (form_notice(&f, SIGN, &["comment"]))
                }
            }
            @if may_edit {
                section.card {
                    h2 { (t.s("room-edit")) }
                    (editor(&t, &me, &f, (EDIT, &action, &t.s("room-edit-save")), &policy, (&p.rationale, &p.effective_from.to_string())))
                }
            } @else {
                p.muted id="proposal-locked" { (t.s("room-locked")) }
                (form_notice(&f, EDIT, &[]))
            }
        },
    ))
}

/// The request a proposal form gives, and the tiers it offered (for the refusals' fields).
fn request_of(form: &HashMap<String, String>) -> Result<(ProposalRequest, Vec<u8>), Problem> {
    let (policy, offered) = read_form(form)?;
    let text = |name: &str| {
        form.get(name)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Ok((
        ProposalRequest {
            version: policy.version,
            approval_valid_days: policy.approval_valid_days,
            tiers: policy
                .tiers
                .iter()
                .map(|x| TierInput {
                    days: x.days,
                    min_days_in_treatment: x.min_days_in_treatment,
                    min_attendance_30: x.min_attendance_30,
                    min_attendance_90: x.min_attendance_90,
                    last_urine_negative: x.last_urine_negative,
                })
                .collect(),
            rationale: text("rationale"),
            effective_from: text("effective_from"),
        },
        offered,
    ))
}

fn kept(form: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !form.contains_key("version") {
        values.push(("version".into(), String::new()));
    }
    values
}

fn at_page_field(e: anxin_app::Error, offered: &[u8]) -> AppError {
    match AppError::from(e) {
        AppError::Domain(DomainError::Refused(p)) => {
            AppError::Domain(DomainError::Refused(page_field(p, offered)))
        }
        other => other,
    }
}

async fn propose_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = "/takehome/proposals";
    let done = match request_of(&form) {
        Err(p) => Err(AppError::Domain(DomainError::Refused(p))),
        Ok((req, offered)) => uc::propose(&st.app, &me.app_actor(), &req)
            .await
            .map(|c| (c.id, req.version.clone()))
            .map_err(|e| at_page_field(e, &offered)),
    };
    match done {
        Ok((id, version)) => flash::redirect(
            &format!("/takehome/proposals/{id}"),
            Tone::Ok,
            Message::Id {
                id: "room-proposed".into(),
                args: vec![("version".into(), version)],
            },
        ),
        Err(e) => refused_form(&st, base, NEW, e, kept(&form)),
    }
}

async fn edit_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = format!("/takehome/proposals/{id}");
    let done = match (anxin_app::parse_id(&id), request_of(&form)) {
        (Err(e), _) => Err(AppError::from(e)),
        (_, Err(p)) => Err(AppError::Domain(DomainError::Refused(p))),
        (Ok(id), Ok((req, offered))) => uc::edit(&st.app, &me.app_actor(), id, &req)
            .await
            .map(|()| req.version.clone())
            .map_err(|e| at_page_field(e, &offered)),
    };
    match done {
        Ok(version) => flash::redirect(
            &base,
            Tone::Ok,
            Message::Id {
                id: "room-edited".into(),
                args: vec![("version".into(), version)],
            },
        ),
        Err(e) => refused_form(&st, &base, EDIT, e, kept(&form)),
    }
}

async fn sign_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = format!("/takehome/proposals/{id}");
    let comment = form.get("comment").cloned().unwrap_or_default();
    let req = SignRequest {
        comment: comment.clone(),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |id| uc::sign(&st.app, &actor, id, &req)).await;
    match done {
        Ok(_) => {
            let party = Party::of(me.role()).map_or("centre", Party::as_str);
            let t = T::of(&st, &me);
            flash::redirect(
                &base,
                Tone::Ok,
                Message::Id {
                    id: "room-signed".into(),
                    args: vec![("party".into(), t.s(&format!("room-party-{party}")))],
                },
            )
        }
        Err(e) => refused_form(&st, &base, SIGN, e, vec![("comment".into(), comment)]),
    }
}

async fn api_list(
    State(st): State<AppState>,
    me: CurrentUser,
) -> AppResult<Json<Vec<ProposalView>>> {
    Ok(Json(uc::proposals(&st.app, &me.app_actor()).await?))
}

async fn api_propose(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<ProposalRequest>,
) -> AppResult<(StatusCode, Json<ProposalCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(uc::propose(&st.app, &me.app_actor(), &req).await?),
    ))
}

async fn api_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<ProposalPage>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::page(&st.app, &me.app_actor(), id).await?))
}

async fn api_edit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ProposalRequest>,
) -> AppResult<StatusCode> {
    let id = anxin_app::parse_id(&id)?;
    uc::edit(&st.app, &me.app_actor(), id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_sign(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SignRequest>,
) -> AppResult<Json<ProposalView>> {
    let id = anxin_app::parse_id(&id)?;
    Ok(Json(uc::sign(&st.app, &me.app_actor(), id, &req).await?))
}

/// Adds the policy room's pages and API routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(RouteSpec::web(Get, "/takehome/proposals", Needs(PolicyPropose), "The joint policy room: the site's take-home policy proposals"), list_page)
        .add(RouteSpec::web(Post, "/takehome/proposals", Needs(PolicyPropose), "Propose a take-home policy version"), propose_form)
        .add(RouteSpec::web(Get, "/takehome/proposals/{id}", Needs(PolicyPropose), "A proposal with its diff, preview and signatures"), proposal_page)
        .add(RouteSpec::web(Post, "/takehome/proposals/{id}", Needs(PolicyPropose), "Edit a proposal nobody signed yet"), edit_form)
        .add(RouteSpec::web(Post, "/takehome/proposals/{id}/sign", Needs(PolicySign), "Sign a proposal for one's party"), sign_form)
        .add(RouteSpec::api(Get, "/api/v1/policy/proposals", Needs(PolicyPropose), "takehome", "The site's take-home policy proposals, newest first, each with its diff and signatures").answers::<Vec<ProposalView>>(), api_list)
        .add(RouteSpec::api(Post, "/api/v1/policy/proposals", Needs(PolicyPropose), "takehome", "Propose a take-home policy version (start today or later)").body::<ProposalRequest>().answers::<ProposalCreated>().status(201), api_propose)
        .add(RouteSpec::api(Get, "/api/v1/policy/proposals/{id}", Needs(PolicyPropose), "takehome", "A proposal with its preview on the centre's clients (aggregate, suppressed for the CDC and the police)").answers::<ProposalPage>(), api_page)
        .add(RouteSpec::api(Put, "/api/v1/policy/proposals/{id}", Needs(PolicyPropose), "takehome", "Edit a proposal nobody signed yet").body::<ProposalRequest>().status(204), api_edit)
        .add(RouteSpec::api(Post, "/api/v1/policy/proposals/{id}/signatures", Needs(PolicySign), "takehome", "Sign a proposal for one's party: the CDC, the police, then the centre's manager").body::<SignRequest>().answers::<ProposalView>(), api_sign)
}
