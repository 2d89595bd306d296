//! The clinic's pages: the dispensing window (day list and one-field dose entry), the clinical
//! sections of a client's page (identity, orders, adherence timeline, urine, consents), and the
//! stock page. Each form posts to a route with its own permission; rules live in [`crate::clinic`].

use std::collections::BTreeMap;

use anxin_app::orders::ConfirmationState;
use anxin_app::records::{Client, Confirmation, StoredOrder};
use anxin_domain::clinic::adherence::Day;
use anxin_domain::clinic::orders::MIN_REASON_CHARS;
use anxin_domain::clinic::stage::Stage;
use anxin_domain::clinic::urine::Outcome;
use anxin_domain::{Access, Code, DomainError, Permission};
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::clinic::{self, DayStatus, OrderRequest, StepRequest, UrineRequest};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{
    after_form, back_with, error_page, field_error, flash, form_error, form_notice, layout,
    on_path_id, refused_form, Flash, WebResult, T,
};

fn tr<'a>(st: &'a AppState, me: &CurrentUser) -> T<'a> {
    T {
        st,
        lang: Lang::from_tag(&me.user.language),
    }
}

fn csrf(me: &CurrentUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(me.csrf_token); }
}

/// Which rows of the day list to show: `give`, `done`, `withheld` (with no order), `in_box`,
/// `urine` (a urine test due today); anything else shows all.
#[derive(Deserialize, Default)]
struct DayFilter {
    #[serde(default)]
    show: Option<String>,
}

/// The filters of the day list, in the order of their links.
const DAY_FILTERS: [&str; 5] = ["give", "done", "withheld", "in_box", "urine"];

fn day_filter_keeps(filter: &str, r: &clinic::DayRow) -> bool {
    match filter {
        "give" => r.status == DayStatus::Give,
        "done" => r.status == DayStatus::Done,
        "withheld" => matches!(r.status, DayStatus::Withheld | DayStatus::NoOrder),
        "in_box" => r.status == DayStatus::InBox,
        "urine" => r.urine_due.is_some(),
        _ => true,
    }
}

async fn dispensing_page(
    State(st): State<AppState>,
    me: CurrentUser,
    f: Flash,
    Query(filter): Query<DayFilter>,
) -> WebResult<Markup> {
    let t = tr(&st, &me);
    let all = clinic::day_list(&st, &me).await?;
    let done = all.iter().filter(|r| r.status == DayStatus::Done).count();
    let shown = filter
        .show
        .as_deref()
        .filter(|s| DAY_FILTERS.contains(s))
        .unwrap_or("all");
    let count = |k: &str| all.iter().filter(|r| day_filter_keeps(k, r)).count();
    let rows: Vec<&clinic::DayRow> = all.iter().filter(|r| day_filter_keeps(shown, r)).collect();
    let today = st.today().to_string();
    let closed = anxin_app::calendar::closed_today(&st.app, &me.app_actor()).await?;
    // The client the last dose or refusal named: their photo beside the message.
    let at_window = match f.subject.as_deref() {
        Some(uic) if me.role().has(Permission::PhotoView) => {
            anxin_app::photos::at_window(&st.app, &me.app_actor(), uic).await?
        }
        _ => None,
    };
    Ok(layout(
        &t,
        &t.s("nav-dispensing"),
        Some(&me),
        html! {
            h1 { (t.a("disp-title", &[("day", &today)])) }
            div.window-confirm {
                (flash(&f))
                @if let Some(w) = &at_window { (crate::photos::at_window(&t, w)) }
                // A guest from another centre: no photo here, so the identity is checked another way.
                @else if f.ok.is_some() && f.subject.is_some() && me.role().has(Permission::PhotoView) {
                    div.window-client id="window-client" { p.no-photo id="no-photo" role="status" { (t.s("photo-none-check")) } }
                }
            }
            @if let Some(note) = &closed {
                p.notice role="note" id="closed-today" {
                    @if note.is_empty() { (t.s("disp-closed-today-plain")) } @else { (t.a("disp-closed-today", &[("note", note)])) }
                    " " a href="/calendar" { (t.s("nav-calendar")) }
                }
            }
            form.search method="post" action="/dispensing" id="dose-form" {
                (csrf(&me))
                input name="uic" placeholder=(t.s("disp-uic")) aria-label=(t.s("disp-uic")) autofocus required autocomplete="off";
                button type="submit" id="dose-submit" { (t.s("disp-record")) }
            }
            p.muted { (t.a("disp-summary", &[("done", &done.to_string()), ("total", &all.len().to_string())])) }
            nav.filters id="day-filters" aria-label=(t.s("disp-filter")) {
                a href="/dispensing" aria-current=[(shown == "all").then_some("page")] { (t.s("disp-filter-all")) " (" (all.len()) ")" }
                @for k in DAY_FILTERS {
                    " " a href={"/dispensing?show=" (k)} data-filter=(k) aria-current=[(shown == k).then_some("page")] { (t.s(&format!("disp-filter-{k}"))) " (" (count(k)) ")" }
                }
            }
            p.muted.legend id="day-legend" { "● " (t.s("disp-legend-urine")) }
            table.list id="day-list" {
                thead { tr { th { (t.s("disp-uic")) } th { (t.s("disp-ordered")) } th { (t.s("disp-give")) } th { (t.s("disp-status")) } th { (t.s("disp-rule")) } th { (t.s("disp-urine")) } } }
                tbody {
                    @for r in rows {
                        tr class={"status-" (r.status.as_str())} data-uic=(r.uic) {
                            td { a href={"/clients/" (r.client_id)} { (r.uic) } @if r.guest { " · " span.muted { (t.s("disp-guest")) } } }
                            td { @if let Some(mg) = r.ordered_mg { (mg) " mg" } }
                            td { @if let Some(mg) = r.give_mg { strong { (mg) " mg" } } }
                            td { (t.s(&format!("disp-status-{}", r.status.as_str()))) @if r.portions > 1 { " (" (r.portions_given) "/" (r.portions) ")" } }
                            td.muted { (explain(&t, r)) }
                            td { @if r.urine_due.is_some() { span title=(t.s("disp-urine-due")) { "●" } } }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct DoseForm {
    uic: String,
}

async fn dispensing_submit(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<DoseForm>,
) -> Response {
    let t = tr(&st, &me);
    let mut result = clinic::record_dose(&st, &me, &f.uic).await;
    // Not a UIC of this centre as typed: perhaps one without its dashes, its number, or a name.
    if let Err(AppError::Domain(DomainError::Refused(p))) = &result {
        if matches!(p.code, Code::UicMalformed | Code::UicUnknown) {
            use anxin_app::dispensing::{find_at_window, WindowMatch};
            match find_at_window(&st.app, &me.app_actor(), &f.uic).await {
                Ok(WindowMatch::Uic(uic)) => result = clinic::record_dose(&st, &me, &uic).await,
                Ok(WindowMatch::Choose(list)) => return choose_page(&t, &me, &f.uic, &list),
                Ok(WindowMatch::Nobody) => {}
                Err(e) => return form_error("/dispensing", e.into()),
            }
        }
    }
    match result {
        Ok(d) => {
            let mut msg = t.a(
                "disp-given",
                &[
                    ("uic", &d.uic),
                    ("mg", &d.mg.to_string()),
                    ("portion", &d.portion.to_string()),
                    ("portions", &d.portions.to_string()),
                ],
            );
            if let Some(at) = &d.next_portion_at {
                msg.push(' ');
                msg.push_str(&t.a("disp-next-portion", &[("at", at)]));
            }
            if d.urine_due.is_some() {
                msg.push(' ');
                msg.push_str(&t.s("disp-urine-due"));
            }
            crate::flash::redirect_about(
                "/dispensing",
                crate::flash::Tone::Ok,
                crate::flash::Message::Text(msg),
                Some(&d.uic),
            )
        }
        // A refusal that names the client (already given, withheld…): their photo beside it.
        Err(AppError::Domain(DomainError::Refused(p)))
            if p.kind() != anxin_domain::problem::Kind::Forbidden
                && p.code != Code::UicUnknown
                && p.get("uic").is_some() =>
        {
            crate::flash::redirect_about(
                "/dispensing",
                crate::flash::Tone::Error,
                crate::flash::Message::problem(&p),
                p.get("uic"),
            )
        }
        Err(e) => form_error("/dispensing", e),
    }
}

/// The window's question when a number or a name was typed: who is it? Each candidate with
/// the name on record and a button that doses that UIC.
fn choose_page(
    t: &T<'_>,
    me: &CurrentUser,
    query: &str,
    list: &[anxin_app::dispensing::Candidate],
) -> Response {
    let body = html! {
        h1 { (t.s("disp-choose-title")) }
        p { (t.a("disp-choose-help", &[("query", query.trim())])) }
        ul id="window-candidates" {
            @for c in list {
                li data-uic=(c.uic) {
                    form method="post" action="/dispensing" {
                        (csrf(me))
                        input type="hidden" name="uic" value=(c.uic);
                        strong { (c.uic) } " · " (c.name.as_deref().unwrap_or("—")) " "
                        button type="submit" { (t.a("disp-choose-dose", &[("uic", &c.uic)])) }
                    }
                }
            }
        }
        p { a href="/dispensing" { (t.s("disp-choose-back")) } }
    };
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        layout(t, &t.s("disp-choose-title"), Some(me), body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct DemographicsForm {
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birth_year: String,
}

async fn form_demographics(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<DemographicsForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let values = vec![
        ("sex".to_owned(), f.sex.clone()),
        ("birth_year".to_owned(), f.birth_year.clone()),
    ];
    let year = match f.birth_year.trim() {
        "" => None,
        y => match y.parse::<i32>() {
            Ok(y) => Some(y),
            Err(_) => {
                let p = anxin_domain::Problem::new(Code::NumberInvalid)
                    .field("birth_year")
                    .arg("value", y);
                return refused_form(&st, &base, "demographics", p.into(), values);
            }
        },
    };
    let result = async {
        let id = anxin_app::identity::client_id(&id)?;
        anxin_app::identity::set_demographics(
            &st.app,
            &me.app_actor(),
            id,
            &anxin_app::identity::Demographics {
                sex: Some(f.sex.clone()),
                birth_year: year,
            },
        )
        .await
    }
    .await;
    match result {
        Ok(()) => crate::flash::redirect(
            &base,
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "client-demographics-saved".into(),
                args: vec![],
            },
        ),
        Err(e) => refused_form(&st, &base, "demographics", e.into(), values),
    }
}

/// The rule applied to a day row, in the user's language (empty for an ordinary dose).
fn explain(t: &T<'_>, r: &clinic::DayRow) -> String {
    let missed = r.missed_days.to_string();
    match (r.status, r.rule) {
        (DayStatus::Withheld, Some("reinduction")) => {
            t.a("disp-why-reinduction", &[("missed", &missed)])
        }
        (DayStatus::Withheld, _) => t.a("disp-why-review", &[("missed", &missed)]),
        (DayStatus::NotYet, _) => t.a(
            "disp-why-not-yet",
            &[
                ("portion", &(r.portions_given + 1).to_string()),
                ("portions", &r.portions.to_string()),
                ("at", r.next_portion_at.as_deref().unwrap_or_default()),
            ],
        ),
        (DayStatus::InBox, _) => t.a(
            "disp-why-in-box",
            &[
                ("serial", r.box_serial.as_deref().unwrap_or_default()),
                ("at", r.code_at.as_deref().unwrap_or_default()),
                ("sent", if r.code_sent { "yes" } else { "no" }),
            ],
        ),
        (_, Some(rule)) if rule != "normal" => {
            let mg = r.give_mg.map(|m| m.to_string()).unwrap_or_default();
            t.a("disp-why-reviewed", &[("missed", &missed), ("mg", &mg)])
        }
        _ => String::new(),
    }
}

fn urine_summary(t: &T<'_>, o: &Outcome) -> String {
    match o {
        Outcome::Tested(r) => {
            let pos: Vec<String> = r
                .iter()
                .filter(|(s, p)| **p && !s.prescribed())
                .map(|(s, _)| t.s(&format!("substance-{}", s.as_str())))
                .collect();
            if pos.is_empty() {
                "−".into()
            } else {
                format!("{}: {}", t.s("client-urine-positive"), pos.join(", "))
            }
        }
        Outcome::Refused => t.s("client-urine-refused"),
        Outcome::NotProvided => t.s("client-urine-not-provided"),
    }
}

/// A consent's purpose in the user's language (the stored code when it is not a known one).
pub(crate) fn consent_purpose(t: &T<'_>, purpose: &str) -> String {
    match purpose {
        "take_home_police_check" | "cdc_figures" | "box_gps" => {
            t.s(&format!("consent-purpose-{purpose}"))
        }
        other => other.to_owned(),
    }
}

fn day_cell(d: &Day) -> &'static str {
    match d {
        Day::NotExpected => "tl-none",
        Day::Attended => "tl-yes",
        Day::Missed => "tl-no",
        Day::Pending => "tl-pending",
        Day::Closed => "tl-closed",
    }
}

/// The identity and clinical sections of a client's page, from what the record read gathered
/// for `me`'s role.
pub(crate) fn client_details(
    t: &T<'_>,
    me: &CurrentUser,
    record: &anxin_app::record::RecordPage,
    f: &Flash,
) -> Markup {
    let st = t.st;
    let role = me.role();
    let c = &record.client;
    let identity = &record.identity;
    let demographics = record.demographics;
    let boxes_out = &record.boxes_out;
    let today = st.today();
    let pct = |p: Option<f64>| p.map_or("–".to_owned(), |x| format!("{x:.0}%"));
    let base = format!("/clients/{}", c.id);
    html! {
        dl {
            dt { (t.s("client-stage")) } dd id="stage" { (t.s(&format!("stage-{}", c.stage.as_str()))) " · " (c.stage_since)
                @if let Some(o) = c.order { " · " span id="order-term" { (t.a("client-term", &[("from", &o.start.to_string()), ("to", &o.end.to_string())])) } } }
            dt { (t.s("client-status")) } dd {
                @if let Some(d) = c.discharged_on { (t.a("client-discharged", &[("day", &d.to_string())])) } @else { (t.s("client-in-treatment")) }
            }
        }
        @if let Some(id) = &identity {
            section.card id="identity" {
                h2 { (t.s("client-identity")) }
                form method="post" action={(base) "/identity"} id="identity-form" {
                    (csrf(me))
                    (form_notice(f, "identity", &IDENTITY_FIELDS))
                    @for (field, label, stored) in [("name", "client-name", &id.name), ("national_id", "client-national-id", &id.national_id), ("phone", "client-phone", &id.phone), ("address", "client-address", &id.address)] {
                        label { (t.s(label)) input name=(field) value=(f.value("identity", field).map(str::to_owned).or_else(|| stored.clone()).unwrap_or_default()) aria-invalid=[f.error_at("identity", field).map(|_| "true")]; (field_error(f, "identity", field)) }
                    }
                    @if role.has(Permission::ClientWrite) { button type="submit" { (t.s("client-identity-save")) } }
                }
            }
        }
        @if let Some((sex, year)) = demographics {
            section.card id="demographics" {
                h2 { (t.s("client-demographics")) }
                form method="post" action={(base) "/demographics"} id="demographics-form" {
                    (csrf(me))
                    (form_notice(f, "demographics", &["sex", "birth_year"]))
                    @let chosen = f.value("demographics", "sex").map(str::to_owned).unwrap_or_else(|| sex.as_str().to_owned());
                    label { (t.s("client-sex")) select name="sex" {
                        @for s in ["unknown", "male", "female"] { option value=(s) selected[chosen == s] { (t.s(&format!("client-sex-{s}"))) } }
                    } (field_error(f, "demographics", "sex")) }
                    label { (t.s("client-birth-year")) input name="birth_year" type="number" min="1920" max="2100" value=(f.value("demographics", "birth_year").map(str::to_owned).or_else(|| year.map(|y| y.to_string())).unwrap_or_default()) aria-invalid=[f.error_at("demographics", "birth_year").map(|_| "true")]; (field_error(f, "demographics", "birth_year")) }
                    @if role.has(Permission::ClientWrite) { button type="submit" { (t.s("client-demographics-save")) } }
                }
            }
        }
        @if let Some(cl) = &record.clinical {
            @let (adh, urine_streak, orders, tests, consents) = (&cl.adherence, cl.urine_negative_streak, &cl.orders, &cl.urine_tests, &cl.consents);
            (crate::assessment::section(t, me, c.id, &cl.assessments, f))
            (crate::assessment::outcomes_section(t, me, c.id, &cl.overdoses, cl.death.as_ref(), boxes_out, f))
            section.card id="adherence" {
                h2 { (t.s("client-adherence")) }
                dl {
                    dt { (t.s("client-adherence-30")) } dd { (adh.last_30.attended) "/" (adh.last_30.expected) " · " (pct(adh.last_30.percent())) }
                    dt { (t.s("client-adherence-90")) } dd { (adh.last_90.attended) "/" (adh.last_90.expected) " · " (pct(adh.last_90.percent())) }
                    dt { (t.s("client-streak")) } dd { (adh.current_streak) }
                    dt { (t.s("client-gap")) } dd { (adh.longest_gap_90) }
                    dt { (t.s("client-urine-streak")) } dd { (urine_streak) }
                }
                div.timeline aria-label="90 days" { @for d in &adh.timeline { span class=(day_cell(d)) {} } }
            }
            section.card id="orders" {
                h2 { (t.s("client-orders")) }
                table.list {
                    thead { tr { th { (t.s("client-order-kind")) } th { (t.s("client-order-start")) } th { (t.s("client-order-mg")) } th { (t.s("client-order-split")) } th { (t.s("client-order-reason")) } th { (t.s("client-order-confirmation")) } } }
                    tbody { @for o in orders.iter().rev() { tr data-order=(o.id) data-confirmation=(confirmation_state(&o.confirmation)) {
                        td { (t.s(&format!("order-kind-{}", o.order.kind.as_str()))) } td { (o.order.start) }
                        td { (o.order.mg) @for s in &o.order.steps { " → " (s.mg) " (" (s.from) ")" } } td { (o.order.split) } td { (o.order.reason) }
                        td { (order_confirmation(t, me, o)) }
                    } } }
                }
                (crate::assessment::warnings(t, &cl.assessments))
                @if role.has(Permission::Prescribe) {
                    @let limits = st.app.settings.clinic.orders.induction;
                    form method="post" action={(base) "/orders"} id="order-form" {
                        (csrf(me))
                        (form_notice(f, "order", ORDER_FIELDS))
                        label { (t.s("client-order-kind")) select name="kind" { @for k in ["maintenance", "titration", "induction"] { option value=(k) selected[f.value("order", "kind") == Some(k)] { (t.s(&format!("order-kind-{k}"))) } } } (field_error(f, "order", "kind")) }
                        label { (t.s("client-order-start")) input name="start" type="date" value=(f.value("order", "start").map(str::to_owned).unwrap_or_else(|| today.to_string())); (field_error(f, "order", "start")) }
                        label { (t.s("client-order-mg")) input name="mg" type="number" min="1" max="1000" required value=[f.value("order", "mg")] aria-invalid=[f.error_at("order", "mg").map(|_| "true")]; (field_error(f, "order", "mg")) }
                        label { (t.s("client-order-split")) select name="split" { option value="1" { "1" } option value="2" selected[f.value("order", "split") == Some("2")] { "2" } } (field_error(f, "order", "split")) }
                        fieldset.steps id="order-steps" {
                            legend { (t.s("client-order-steps")) }
                            @for i in 0..ORDER_STEPS {
                                @let (from, mg) = (format!("steps[{i}].from"), format!("steps[{i}].mg"));
                                div.step {
                                    label { (t.a("client-order-step-from", &[("n", &(i + 1).to_string())])) input name=(from) type="date" value=[f.value("order", &from)] aria-invalid=[f.error_at("order", &from).map(|_| "true")]; (field_error(f, "order", &from)) }
                                    label { (t.a("client-order-step-mg", &[("n", &(i + 1).to_string())])) input name=(mg) type="number" min="1" max="1000" value=[f.value("order", &mg)] aria-invalid=[f.error_at("order", &mg).map(|_| "true")]; (field_error(f, "order", &mg)) }
                                }
                            }
                        }
                        p.muted id="order-limits" { (t.a("client-order-limits", &[
                            ("first", &limits.first_dose_max_mg.to_string()),
                            ("day", &limits.first_day_max_mg.to_string()),
                            ("step", &limits.step_max_mg.to_string()),
                            ("days", &limits.step_min_days.to_string()),
                        ])) }
                        label { (t.s("client-order-reason")) input name="reason" value=[f.value("order", "reason")] aria-invalid=[f.error_at("order", "reason").map(|_| "true")]; (field_error(f, "order", "reason")) }
                        button type="submit" { (t.s("client-order-write")) }
                    }
                    form method="post" action={(base) "/reviews"} {
                        (csrf(me))
                        label { (t.s("client-review-note")) input name="note" required; }
                        button type="submit" { (t.s("client-review")) }
                    }
                }
            }
            section.card id="urine" {
                h2 { (t.s("client-urine")) }
                table.list {
                    tbody { @for u in tests.iter().take(12) { tr { td { (u.collected_on) } td { @if u.reason == "random" { (t.s("client-urine-random")) } @else { (u.reason) } } td { (urine_summary(t, &u.outcome)) } td { @if u.outcome.negative() { "✓" } @else { "✗" } } } } }
                }
                @if role.has(Permission::UrineRecord) {
                    form method="post" action={(base) "/urine-tests"} id="urine-form" {
                        (csrf(me))
                        label { (t.s("client-urine-outcome")) select name="outcome" {
                            option value="tested" { (t.s("client-urine-tested")) }
                            option value="refused" { (t.s("client-urine-refused")) }
                            option value="not_provided" { (t.s("client-urine-not-provided")) } } }
                        label.inline { input type="checkbox" name="observed" value="true" checked; " " (t.s("client-urine-observed")) }
                        fieldset { legend { (t.s("client-urine-positive")) }
                            @for s in anxin_domain::clinic::urine::Substance::ALL { label.inline { input type="checkbox" name={"pos_" (s.as_str())} value="true"; " " (t.s(&format!("substance-{}", s.as_str()))) } } }
                        button type="submit" { (t.s("client-urine-record")) }
                    }
                }
            }
            section.card id="consents" {
                h2 { (t.s("client-consents")) }
                table.list { tbody { @for x in consents { tr { td { (consent_purpose(t, &x.purpose)) } td { (x.recipient) } td { (x.scope) } td { (x.given_on) " – " (x.expires_on) } td { @if x.active_on(today) { "✓" } @else { "✗" } }
                    td.actions { @if role.has(Permission::ConsentManage) && x.revoked_on.is_none() {
                        form method="post" action={"/consents/" (x.id) "/revoke?client=" (c.id)} { (csrf(me)) input name="reason" placeholder=(t.s("consent-revoke-reason")) aria-label=(t.s("consent-revoke-reason")) required; button type="submit" { (t.s("consent-revoke")) } }
                    } } } } } }
                (consent_form(t, me, c, f, None))
            }
            (agreement_section(t, me, c, f, &cl.agreements, None))
        }
        @if role.has(Permission::ClientWrite) && c.discharged_on.is_none() {
            section.card id="course" {
                h2 { (t.s("client-course")) }
                form method="post" action={(base) "/stage"} id="stage-form" {
                    (csrf(me))
                    (form_notice(f, "stage", &["stage", "since", "order_start", "order_end", "confirm_box_out"]))
                    @let chosen = f.value("stage", "stage").map(str::to_owned).unwrap_or_else(|| c.stage.as_str().to_owned());
                    label { (t.s("client-stage")) select name="stage" { @for s in Stage::ALL { option value=(s.as_str()) selected[chosen == s.as_str()] { (t.s(&format!("stage-{}", s.as_str()))) } } } (field_error(f, "stage", "stage")) }
                    label { (t.s("client-stage-since")) input name="since" type="date" value=(f.value("stage", "since").map(str::to_owned).unwrap_or_else(|| today.to_string())); (field_error(f, "stage", "since")) }
                    p.muted { (t.a("intake-order-help", &[("years", &anxin_domain::clinic::stage::ORDER_YEARS.to_string())])) }
                    @for (field, label) in [("order_start", "client-term-start"), ("order_end", "client-term-end")] {
                        label { (t.s(label)) input name=(field) type="date" value=(f.value("stage", field).unwrap_or_default()) aria-invalid=[f.error_at("stage", field).map(|_| "true")]; (field_error(f, "stage", field)) }
                    }
                    @if !boxes_out.is_empty() {
                        label.check { input type="checkbox" name="confirm_box_out" value="true"; " " (t.s("client-discharge-confirm-box")) (field_error(f, "stage", "confirm_box_out")) }
                    }
                    button type="submit" { (t.s("client-stage-save")) }
                }
                form method="post" action={(base) "/transfer"} id="transfer-form" {
                    (csrf(me))
                    (form_notice(f, "transfer", &["site", "from", "confirm_box_out"]))
                    label { (t.s("client-transfer-site")) input name="site" required value=(f.value("transfer", "site").unwrap_or_default()); (field_error(f, "transfer", "site")) }
                    label { (t.s("client-transfer-from")) input name="from" type="date" value=(f.value("transfer", "from").map(str::to_owned).unwrap_or_else(|| today.to_string())); (field_error(f, "transfer", "from")) }
                    @if !boxes_out.is_empty() {
                        label.check { input type="checkbox" name="confirm_box_out" value="true"; " " (t.s("client-discharge-confirm-box")) (field_error(f, "transfer", "confirm_box_out")) }
                    }
                    button type="submit" { (t.s("client-transfer")) }
                }
                form method="post" action={(base) "/guest-dosing"} id="guest-form" {
                    (csrf(me))
                    (form_notice(f, "guest", &["site", "from", "to"]))
                    p.muted { (t.a("client-guest-help", &[("max", &anxin_domain::clinic::guest::MAX_DAYS.to_string())])) }
                    label { (t.s("client-guest-site")) input name="site" required value=(f.value("guest", "site").unwrap_or_default()) aria-invalid=[f.error_at("guest", "site").map(|_| "true")]; (field_error(f, "guest", "site")) }
                    label { (t.s("client-guest-from")) input name="from" type="date" min=(today) value=(f.value("guest", "from").map(str::to_owned).unwrap_or_else(|| today.to_string())) aria-invalid=[f.error_at("guest", "from").map(|_| "true")]; (field_error(f, "guest", "from")) }
                    label { (t.s("client-guest-to")) input name="to" type="date" required min=(today) value=(f.value("guest", "to").unwrap_or_default()) aria-invalid=[f.error_at("guest", "to").map(|_| "true")]; (field_error(f, "guest", "to")) }
                    button type="submit" { (t.s("client-guest")) }
                }
            }
            section.card {
                h2 { (t.s("client-discharge")) }
                form method="post" action={(base) "/discharge"} id="discharge-form" {
                    (csrf(me))
                    (form_notice(f, "discharge", &["reason", "confirm_box_out"]))
                    label { (t.s("client-discharge-reason")) input name="reason" required value=(f.value("discharge", "reason").unwrap_or_default()); (field_error(f, "discharge", "reason")) }
                    @for serial in boxes_out {
                        p.notice.box-out role="alert" { (t.a("client-discharge-box-out", &[("serial", serial)])) }
                    }
                    @if !boxes_out.is_empty() {
                        label.check { input type="checkbox" name="confirm_box_out" value="true" required; " " (t.s("client-discharge-confirm-box")) (field_error(f, "discharge", "confirm_box_out")) }
                    }
                    button type="submit" { (t.s("client-discharge")) }
                }
            }
        }
        @if role.has(Permission::ClientWrite) && c.discharged_on.is_some() && record.clinical.as_ref().is_none_or(|cl| cl.death.is_none()) {
            section.card id="readmit" {
                h2 { (t.s("client-readmit")) }
                p.muted { (t.s("client-readmit-help")) }
                form method="post" action={(base) "/readmit"} id="readmit-form" {
                    (csrf(me))
                    (form_notice(f, "readmit", &[]))
                    button type="submit" { (t.s("client-readmit")) }
                }
            }
        }
        @if c.stage == Stage::CompulsoryIsolated { p.notice { (t.s("client-stage-cit-notice")) } }
    }
}

#[derive(Deserialize)]
struct StageForm {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    order_start: String,
    #[serde(default)]
    order_end: String,
    #[serde(default)]
    confirm_box_out: Option<String>,
}

async fn form_stage(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<StageForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = anxin_app::treatment::StageRequest {
        stage: f.stage.clone(),
        since: Some(f.since.clone()).filter(|s| !s.trim().is_empty()),
        order_start: Some(f.order_start.clone()),
        order_end: Some(f.order_end.clone()),
        confirm_box_out: f.confirm_box_out.as_deref() == Some("true"),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::treatment::set_stage(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        Ok(_) => {
            st.app.gps.invalidate();
            Redirect::to(&base).into_response()
        }
        Err(e) => refused_form(
            &st,
            &base,
            "stage",
            e,
            vec![
                ("stage".into(), f.stage),
                ("since".into(), f.since),
                ("order_start".into(), f.order_start),
                ("order_end".into(), f.order_end),
            ],
        ),
    }
}

#[derive(Deserialize)]
struct TransferForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    confirm_box_out: Option<String>,
}

#[derive(Deserialize)]
struct GuestForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

async fn form_guest(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<GuestForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = anxin_app::treatment::SiteMove {
        site: f.site.clone(),
        from: Some(f.from.clone()).filter(|s| !s.trim().is_empty()),
        to: Some(f.to.clone()),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::treatment::guest(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        Ok(()) => crate::flash::redirect(
            &base,
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "client-guest-arranged".into(),
                args: vec![
                    ("site".into(), f.site.trim().to_uppercase()),
                    ("to".into(), f.to.trim().to_owned()),
                ],
            },
        ),
        Err(e) => refused_form(
            &st,
            &base,
            "guest",
            e,
            vec![
                ("site".into(), f.site),
                ("from".into(), f.from),
                ("to".into(), f.to),
            ],
        ),
    }
}

async fn form_transfer(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<TransferForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = anxin_app::treatment::TransferRequest {
        site: f.site.clone(),
        from: Some(f.from.clone()).filter(|s| !s.trim().is_empty()),
        confirm_box_out: f.confirm_box_out.as_deref() == Some("true"),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::treatment::transfer(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        // The record now belongs to the other centre: back to this centre's list.
        Ok(_) => {
            st.app.gps.invalidate();
            crate::flash::redirect(
                "/clients",
                crate::flash::Tone::Ok,
                crate::flash::Message::Id {
                    id: "client-transferred".into(),
                    args: vec![("site".into(), f.site.trim().to_owned())],
                },
            )
        }
        Err(e) => refused_form(
            &st,
            &base,
            "transfer",
            e,
            vec![("site".into(), f.site), ("from".into(), f.from)],
        ),
    }
}

async fn form_readmit(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let base = format!("/clients/{id}");
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::treatment::readmit(&st.app, &actor, cid)
    })
    .await;
    match done {
        Ok(()) => Redirect::to(&base).into_response(),
        Err(e) => refused_form(&st, &base, "readmit", e, vec![]),
    }
}

async fn form_identity(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let get = |k: &str| f.get(k).cloned();
    let req = anxin_app::identity::IdentityRequest {
        name: get("name"),
        national_id: get("national_id"),
        phone: get("phone"),
        address: get("address"),
    };
    let r = match anxin_app::identity::client_id(&id) {
        Ok(cid) => anxin_app::identity::set_identity(&st.app, &me.app_actor(), cid, &req)
            .await
            .map_err(AppError::from),
        Err(e) => Err(e.into()),
    };
    match r {
        Ok(()) => back_with(&base, "ok", &tr(&st, &me).s("client-identity-saved")),
        Err(e) => refused_form(&st, &base, "identity", e, typed(&f, &IDENTITY_FIELDS)),
    }
}

/// The fields of the identity form.
const IDENTITY_FIELDS: [&str; 4] = ["name", "national_id", "phone", "address"];
/// The titration steps the order form offers.
const ORDER_STEPS: usize = 3;
/// The fields of the order form.
const ORDER_FIELDS: &[&str] = &[
    "kind",
    "start",
    "mg",
    "split",
    "reason",
    "steps[0].from",
    "steps[0].mg",
    "steps[1].from",
    "steps[1].mg",
    "steps[2].from",
    "steps[2].mg",
];

/// An order's confirmation as a `data-` value.
fn confirmation_state(c: &Confirmation) -> &'static str {
    match c {
        Confirmation::NotNeeded => "not_needed",
        Confirmation::Awaiting => "awaiting",
        Confirmation::Confirmed { .. } => "confirmed",
    }
}

/// Where an order stands with its second prescriber: the limits it goes beyond, and for
/// another prescriber the button that confirms it.
fn order_confirmation(t: &T<'_>, me: &CurrentUser, o: &StoredOrder) -> Markup {
    let beyond = html! {
        ul.limits { @for e in &o.excesses { li { (t.st.i18n.problem(t.lang, &e.problem().arg("chars", MIN_REASON_CHARS))) } } }
    };
    match o.confirmation {
        Confirmation::NotNeeded => html! {},
        Confirmation::Confirmed { .. } => html! { span.ok { (t.s("order-confirmed")) } (beyond) },
        Confirmation::Awaiting => html! {
            strong.awaiting { (t.s("order-awaiting")) }
            (beyond)
            @if me.role().has(Permission::Prescribe) {
                @if me.user.id == o.prescriber_id {
                    p.muted { (t.s("order-awaiting-other")) }
                } @else {
                    form method="post" action={"/orders/" (o.id) "/confirm"} {
                        (csrf(me))
                        button type="submit" { (t.s("order-confirm")) }
                    }
                }
            }
        },
    }
}

/// What was typed into `fields` of a form, to show again after a refusal.
fn typed(f: &BTreeMap<String, String>, fields: &[&str]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter_map(|k| f.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

async fn form_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let values = typed(&f, ORDER_FIELDS);
    let mg = match get("mg").parse::<u32>() {
        Ok(mg) => mg,
        Err(_) => {
            let p = anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                .field("mg")
                .arg("value", get("mg"));
            return refused_form(&st, &base, "order", p.into(), values);
        }
    };
    let mut steps = vec![];
    for i in 0..ORDER_STEPS {
        let (from, step_mg) = (
            get(&format!("steps[{i}].from")),
            get(&format!("steps[{i}].mg")),
        );
        if from.is_empty() && step_mg.is_empty() {
            continue;
        }
        let Ok(step_mg) = step_mg.parse::<u32>() else {
            let p = anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                .field(format!("steps[{i}].mg"))
                .arg("value", step_mg);
            return refused_form(&st, &base, "order", p.into(), values);
        };
        steps.push(StepRequest { from, mg: step_mg });
    }
    let req = OrderRequest {
        kind: get("kind"),
        start: get("start"),
        mg,
        steps,
        split: get("split").parse().ok(),
        reason: get("reason"),
    };
    match clinic::write_order(&st, &me, &id, req).await {
        Ok(o) if o.confirmation == ConfirmationState::Awaiting => back_with(
            &base,
            "ok",
            &tr(&st, &me).s("client-order-written-awaiting"),
        ),
        Ok(_) => back_with(&base, "ok", &tr(&st, &me).s("client-order-written")),
        Err(e) => refused_form(&st, &base, "order", e, values),
    }
}

/// A second prescriber confirms an order beyond the limits, from the client's page.
async fn form_confirm_order(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    match clinic::confirm_order(&st, &me, &id).await {
        Ok(o) => back_with(
            &format!("/clients/{}", o.client_id),
            "ok",
            &tr(&st, &me).s("order-confirmed-now"),
        ),
        Err(e) => form_error("/clients", e),
    }
}

#[derive(Deserialize)]
struct NoteForm {
    note: String,
}

async fn form_review(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let Ok(cid) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    after_form(
        &base,
        anxin_app::orders::review(&st.app, &me.app_actor(), cid, &f.note).await,
    )
}

async fn form_urine(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let base = format!("/clients/{id}");
    let Ok(cid) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    let outcome_name = f.get("outcome").cloned().unwrap_or_default();
    let results: BTreeMap<String, String> = if outcome_name == "tested" {
        anxin_domain::clinic::urine::Substance::ALL
            .iter()
            .map(|s| {
                let pos = f.contains_key(&format!("pos_{}", s.as_str()));
                (
                    s.as_str().to_owned(),
                    if pos { "positive" } else { "negative" }.to_owned(),
                )
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let req = UrineRequest {
        collected_on: None,
        observed: f.contains_key("observed"),
        outcome: outcome_name,
        results,
        reason: Some("random".into()),
    };
    after_form(
        &base,
        anxin_app::urine::add(&st.app, &me.app_actor(), cid, &req).await,
    )
}

const AGREEMENT_FIELDS: [&str; 6] = [
    "method",
    "duration_months",
    "rules",
    "signed_by",
    "guardian_name",
    "signed_on",
];

/// The form that records one of the standard consents, for those who may; `then` marks a
/// form sent from the intake wizard, which it goes back to.
pub(crate) fn consent_form(
    t: &T<'_>,
    me: &CurrentUser,
    c: &Client,
    f: &Flash,
    then: Option<&str>,
) -> Markup {
    let today = t.st.today();
    let chosen = f.value("consent", "kind").unwrap_or("police").to_owned();
    html! {
        @if me.role().has(Permission::ConsentManage) && c.discharged_on.is_none() {
            form method="post" action={"/clients/" (c.id) "/consents"} id="consent-form" {
                (csrf(me))
                @if let Some(x) = then { input type="hidden" name="then" value=(x); }
                (form_notice(f, "consent", &["kind", "expires_on"]))
                label { (t.s("consent-purpose")) select name="kind" {
                    @for k in ["police", "cdc", "gps"] { option value=(k) selected[chosen == k] { (t.s(&format!("consent-kind-{k}"))) } }
                } (field_error(f, "consent", "kind")) }
                label { (t.s("consent-expires")) input name="expires_on" type="date" min=(today) required
                    value=(f.value("consent", "expires_on").map(str::to_owned).unwrap_or_else(|| (today + chrono::Duration::days(365)).to_string()))
                    aria-invalid=[f.error_at("consent", "expires_on").map(|_| "true")];
                    (field_error(f, "consent", "expires_on")) }
                button type="submit" { (t.s("consent-record")) }
            }
        }
    }
}

/// The treatment agreement: its versions and, for those who record it, the form; `then`
/// marks a form sent from the intake wizard.
pub(crate) fn agreement_section(
    t: &T<'_>,
    me: &CurrentUser,
    c: &Client,
    f: &Flash,
    agreements: &[anxin_app::records::Agreement],
    then: Option<&str>,
) -> Markup {
    let v = |field: &str, default: String| {
        f.value("agreement", field)
            .map(str::to_owned)
            .unwrap_or(default)
    };
    let by_guardian = f.value("agreement", "signed_by") == Some("guardian");
    html! {
        section.card id="agreements" {
            h2 { (t.s("client-agreements")) }
            @if agreements.is_empty() { p.notice { (t.s("client-agreement-none")) } }
            ul { @for a in agreements.iter().rev() { li data-agreement-version=(a.version) {
                (t.a("client-agreement-version", &[("version", &a.version.to_string()), ("on", &a.signed_on.to_string()), ("by", &a.signed_by), ("guardian", a.guardian_name.as_deref().unwrap_or("")), ("method", &a.method), ("months", &a.duration_months.to_string())]))
            } } }
            @if me.role().has(Permission::ConsentManage) && c.discharged_on.is_none() {
                form method="post" action={"/clients/" (c.id) "/agreements"} id="agreement-form" {
                    (csrf(me))
                    @if let Some(x) = then { input type="hidden" name="then" value=(x); }
                    (form_notice(f, "agreement", &AGREEMENT_FIELDS))
                    label { (t.s("client-agreement-method")) input name="method" required value=(v("method", t.s("client-agreement-method-default"))); (field_error(f, "agreement", "method")) }
                    label { (t.s("client-agreement-months")) input name="duration_months" type="number" min="1" max="120" required value=(v("duration_months", "12".into())); (field_error(f, "agreement", "duration_months")) }
                    label { (t.s("client-agreement-rules")) textarea name="rules" rows="3" required { (v("rules", t.s("client-agreement-rules-default"))) } (field_error(f, "agreement", "rules")) }
                    label { (t.s("client-agreement-signed-by")) select name="signed_by" {
                        option value="client" { (t.s("client-agreement-by-client")) }
                        option value="guardian" selected[by_guardian] { (t.s("client-agreement-by-guardian")) } } (field_error(f, "agreement", "signed_by")) }
                    label { (t.s("client-agreement-guardian")) input name="guardian_name" value=(v("guardian_name", String::new())); (field_error(f, "agreement", "guardian_name")) }
                    label { (t.s("client-agreement-signed-on")) input name="signed_on" type="date" value=(v("signed_on", t.st.today().to_string())); (field_error(f, "agreement", "signed_on")) }
                    button type="submit" { (t.s("client-agreement-record")) }
                }
            }
        }
    }
}

async fn form_agreement(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let from_intake = f.get("then").map(String::as_str) == Some(crate::intake::THEN);
    let base = if from_intake {
        crate::intake::step_path(&id, "agreement")
    } else {
        format!("/clients/{id}")
    };
    let values = typed(&f, &AGREEMENT_FIELDS);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let months = match get("duration_months").trim().parse::<i64>() {
        Ok(m) => m,
        Err(_) => {
            let p = anxin_domain::Problem::new(anxin_domain::Code::NumberInvalid)
                .field("duration_months")
                .arg("value", get("duration_months").trim());
            return refused_form(&st, &base, "agreement", p.into(), values);
        }
    };
    let req = anxin_app::agreements::AgreementRequest {
        method: get("method"),
        duration_months: months,
        rules: get("rules"),
        signed_by: get("signed_by"),
        guardian_name: Some(get("guardian_name")),
        signed_on: Some(get("signed_on")),
    };
    let actor = me.app_actor();
    let added = on_path_id(&id, |cid| {
        anxin_app::agreements::add(&st.app, &actor, cid, &req)
    })
    .await;
    match added {
        Ok(a) => back_with(
            &if from_intake {
                crate::intake::step_path(&id, "consents")
            } else {
                base
            },
            "ok",
            &tr(&st, &me).a(
                "client-agreement-recorded",
                &[("version", &a.version.to_string())],
            ),
        ),
        Err(e) => refused_form(&st, &base, "agreement", e, values),
    }
}

#[derive(Deserialize)]
struct ReasonForm {
    reason: String,
}

#[derive(Deserialize)]
struct DischargeForm {
    reason: String,
    #[serde(default)]
    confirm_box_out: Option<String>,
}

async fn form_discharge(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<DischargeForm>,
) -> Response {
    let base = format!("/clients/{id}");
    let req = anxin_app::treatment::DischargeRequest {
        reason: f.reason.clone(),
        on: None,
        confirm_box_out: f.confirm_box_out.as_deref() == Some("true"),
    };
    let actor = me.app_actor();
    let done = on_path_id(&id, |cid| {
        anxin_app::treatment::discharge(&st.app, &actor, cid, &req)
    })
    .await;
    match done {
        Ok(_) => Redirect::to(&base).into_response(),
        Err(e) => refused_form(
            &st,
            &base,
            "discharge",
            e,
            vec![("reason".into(), f.reason)],
        ),
    }
}

async fn stock_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = tr(&st, &me);
    let anxin_app::stock::StockView { now, closeouts } =
        anxin_app::stock::view(&st.app, &me.app_actor(), 14).await?;
    Ok(layout(
        &t,
        &t.s("stock-title"),
        Some(&me),
        html! {
            h1 { (t.s("stock-title")) }
            (flash(&f))
            dl id="stock-now" {
                dt { (t.s("stock-opening")) } dd { (format!("{:.1}", now.opening_ml)) " mL" }
                dt { (t.s("stock-received")) } dd { (format!("{:.1}", now.received_ml)) " mL" }
                dt { (t.s("stock-window")) } dd id="stock-window" { (format!("{:.0}", now.window_mg)) " mg" }
                dt { (t.s("stock-boxed")) } dd id="stock-boxed" { (format!("{:.0}", now.boxed_mg)) " mg" }
                dt { (t.s("stock-returned")) } dd id="stock-returned" { (format!("{:.0}", now.returned_mg)) " mg" }
                dt { (t.s("stock-dosed")) } dd { (format!("{:.0}", now.dosed_mg)) " mg" }
                dt { (t.s("stock-expected")) } dd { strong { (format!("{:.1}", now.expected_ml)) " mL" } }
            }
            section.card {
                h2 { (t.s("stock-close")) }
                form method="post" action="/stock/closeout" id="closeout-form" {
                    (csrf(&me))
                    label { (t.s("stock-measured")) input name="measured_ml" type="number" step="0.1" min="0" required; }
                    label { (t.s("stock-reason")) input name="reason"; }
                    button type="submit" { (t.s("stock-close")) }
                }
            }
            section.card {
                h2 { (t.s("stock-receive")) }
                form method="post" action="/stock/receipt" {
                    (csrf(&me))
                    label { (t.s("stock-bottles")) input name="bottles" type="number" min="1" required; }
                    label { (t.s("stock-ml-per-bottle")) input name="ml_per_bottle" type="number" step="0.1" value="500"; }
                    label { (t.s("stock-concentration")) input name="concentration_mg_per_ml" type="number" step="0.1" value=(st.settings.clinic.stock.concentration_mg_per_ml); }
                    label { (t.s("stock-lot")) input name="lot" required; }
                    button type="submit" { (t.s("stock-receive")) }
                }
            }
            h2 { (t.s("stock-closeouts")) }
            table.list {
                thead { tr { th { "" } th { (t.s("stock-expected")) } th { (t.s("stock-measured")) } th { (t.s("stock-variance")) } th { (t.s("stock-reason")) } } }
                tbody { @for c in &closeouts { tr { td { (c.day) } td { (format!("{:.1}", c.expected_ml)) } td { (format!("{:.1}", c.measured_ml)) } td { (format!("{:+.1}", c.variance_ml)) } td { (c.reason) } } } }
            }
        },
    ))
}

#[derive(Deserialize)]
struct CloseForm {
    measured_ml: String,
    #[serde(default)]
    reason: String,
}

async fn stock_closeout(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<CloseForm>,
) -> Response {
    let Ok(ml) = f.measured_ml.trim().parse::<f64>() else {
        return back_with("/stock", "error", "measured_ml: must be a volume in mL");
    };
    match clinic::close_stock(&st, &me, ml, &f.reason).await {
        Ok(_) => Redirect::to("/stock").into_response(),
        Err(e) => form_error("/stock", e),
    }
}

#[derive(Deserialize)]
struct ReceiptForm {
    bottles: String,
    ml_per_bottle: String,
    concentration_mg_per_ml: String,
    lot: String,
}

async fn stock_receipt(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<ReceiptForm>,
) -> Response {
    let parsed = (
        f.bottles.trim().parse::<u32>(),
        f.ml_per_bottle.trim().parse::<f64>(),
        f.concentration_mg_per_ml.trim().parse::<f64>(),
    );
    let (Ok(bottles), Ok(ml), Ok(conc)) = parsed else {
        return back_with(
            "/stock",
            "error",
            "bottles, ml_per_bottle, concentration_mg_per_ml: must be numbers",
        );
    };
    let req = anxin_app::stock::ReceiptRequest {
        bottles,
        ml_per_bottle: ml,
        concentration_mg_per_ml: conc,
        lot: f.lot,
        received_on: None,
    };
    match anxin_app::stock::receive(&st.app, &me.app_actor(), &req).await {
        Ok(_) => Redirect::to("/stock").into_response(),
        Err(e) => form_error("/stock", e.into()),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    expires_on: String,
    /// `intake` when sent from the intake wizard.
    #[serde(default)]
    then: Option<String>,
}

async fn form_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<ConsentForm>,
) -> Response {
    let base = if f.then.as_deref() == Some(crate::intake::THEN) {
        crate::intake::step_path(&id, "consents")
    } else {
        format!("/clients/{id}")
    };
    let values = vec![
        ("kind".to_owned(), f.kind.clone()),
        ("expires_on".to_owned(), f.expires_on.clone()),
    ];
    let done = async {
        let cid = anxin_app::parse_id(&id)?;
        let req = anxin_app::consents::StandardConsent::parse(&f.kind)?.request(&f.expires_on);
        anxin_app::consents::add(&st.app, &me.app_actor(), cid, &req).await
    }
    .await;
    match done {
        Ok(x) => back_with(
            &base,
            "ok",
            &tr(&st, &me).a(
                "consent-recorded",
                &[
                    ("purpose", &consent_purpose(&tr(&st, &me), &x.purpose)),
                    ("to", &x.expires_on.to_string()),
                ],
            ),
        ),
        Err(e) => refused_form(&st, &base, "consent", e.into(), values),
    }
}

#[derive(Deserialize)]
struct RevokeQuery {
    client: i64,
}

async fn form_revoke(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<RevokeQuery>,
    Form(f): Form<ReasonForm>,
) -> Response {
    let base = format!("/clients/{}", q.client);
    let Ok(consent) = id.parse::<i64>() else {
        return error_page(DomainError::invalid("id", "not a number").into());
    };
    let req = anxin_app::consents::RevokeRequest { reason: f.reason };
    after_form(
        &base,
        anxin_app::consents::revoke(&st.app, &me.app_actor(), consent, &req).await,
    )
}

/// Adds the clinic's pages and form targets.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/consents",
                Needs(ConsentManage),
                "Record a consent",
            ),
            form_consent,
        )
        .add(
            RouteSpec::web(
                Post,
                "/consents/{id}/revoke",
                Needs(ConsentManage),
                "Revoke a consent",
            ),
            form_revoke,
        )
        .add(
            RouteSpec::web(Get, "/dispensing", Needs(DoseRecord), "Dispensing window"),
            dispensing_page,
        )
        .add(
            RouteSpec::web(Post, "/dispensing", Needs(DoseRecord), "Give a dose"),
            dispensing_submit,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/stage",
                Needs(ClientWrite),
                "Change the stage",
            ),
            form_stage,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/guest-dosing",
                Needs(ClientWrite),
                "Let the client dose at another centre for a while",
            ),
            form_guest,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/transfer",
                Needs(ClientWrite),
                "Transfer",
            ),
            form_transfer,
        )
        .add(
            RouteSpec::web(Post, "/clients/{id}/readmit", Needs(ClientWrite), "Readmit"),
            form_readmit,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/demographics",
                Needs(ClientWrite),
                "Save sex and year of birth",
            ),
            form_demographics,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/identity",
                Needs(ClientWrite),
                "Save identity",
            ),
            form_identity,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/orders",
                Needs(Prescribe),
                "Write a dose order",
            ),
            form_order,
        )
        .add(
            RouteSpec::web(
                Post,
                "/orders/{id}/confirm",
                Needs(Prescribe),
                "Confirm an order beyond the induction limits (second prescriber)",
            ),
            form_confirm_order,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/reviews",
                Needs(Prescribe),
                "Record a review",
            ),
            form_review,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/urine-tests",
                Needs(UrineRecord),
                "Record a urine test",
            ),
            form_urine,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/agreements",
                Needs(ConsentManage),
                "Record a signed treatment agreement",
            ),
            form_agreement,
        )
        .add(
            RouteSpec::web(
                Post,
                "/clients/{id}/discharge",
                Needs(ClientWrite),
                "Discharge",
            ),
            form_discharge,
        )
        .add(
            RouteSpec::web(Get, "/stock", Needs(StockManage), "Methadone stock"),
            stock_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/stock/closeout",
                Needs(StockManage),
                "Close today's stock",
            ),
            stock_closeout,
        )
        .add(
            RouteSpec::web(
                Post,
                "/stock/receipt",
                Needs(StockManage),
                "Record a delivery",
            ),
            stock_receipt,
        )
}
