//! The therapeutic community in the page, for counsellors and peer educators: episodes listed by
//! their resident's UIC (never an internal id), a form that admits a resident (UIC, date, phase),
//! and on each episode a form that moves its phase forward, records how it ended, and later the 6-
//! and 12-month follow-up urine. The rules are `anxin_domain::services::TcEpisode`'s; refusals
//! show at their field in the page's language with what was typed kept.

use anxin_app::services::{self as uc, ListedEpisode, TcRequest};
use anxin_domain::services::{TcEpisode, TcExit, TcPhase};
use anxin_domain::{Access, Permission};
use axum::extract::{Form, Path, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::flash::{self, Message, Tone};
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{field_error, flash, form_notice, layout, refused_form, Flash, WebResult, T};

const BASE: &str = "/tc";
const PHASES: [TcPhase; 4] = [
    TcPhase::Entry,
    TcPhase::Primary,
    TcPhase::ReEntry,
    TcPhase::Aftercare,
];
const EXITS: [TcExit; 2] = [TcExit::Completed, TcExit::DroppedOut];
const FIELDS: [&str; 7] = [
    "uic",
    "admitted_on",
    "phase",
    "left_on",
    "exit",
    "urine_negative_6m",
    "urine_negative_12m",
];

fn follow_up(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "negative",
        Some(false) => "positive",
        None => "",
    }
}

/// One episode's update form, its values the stored ones unless a refused try is being shown.
fn episode_form(t: &T<'_>, me: &CurrentUser, f: &Flash, listed: &ListedEpisode) -> Markup {
    let id = listed.episode.id;
    let form = format!("tc-{id}");
    let e: &TcEpisode = &listed.episode.episode;
    let refused = f.value(&form, "phase").is_some();
    let v = |field: &str, stored: String| {
        if refused {
            f.value(&form, field).unwrap_or_default().to_owned()
        } else {
            stored
        }
    };
    let phase = v("phase", e.phase.as_str().to_owned());
    let exit = v(
        "exit",
        e.exit.map(|x| x.as_str().to_owned()).unwrap_or_default(),
    );
    let ended = e.exit.is_some();
    let invalid = |field: &str| f.error_at(&form, field).map(|_| "true");
    html! {
        form method="post" action={(BASE) "/" (id)} id=(form) class="tc-update" {
            input type="hidden" name="csrf" value=(me.csrf_token);
            input type="hidden" name="uic" value=(listed.uic);
            input type="hidden" name="admitted_on" value=(e.admitted_on);
            (form_notice(f, &form, &FIELDS))
            label { (t.s("tc-phase"))
                select name="phase" disabled[ended] aria-invalid=[invalid("phase")] {
                    // Phases move forward: the current one and those after it.
                    @for p in PHASES.iter().filter(|p| **p >= e.phase) {
                        option value=(p.as_str()) selected[phase == p.as_str()] { (t.s(&format!("tc-phase-{}", p.as_str()))) }
                    }
                }
                (field_error(f, &form, "phase"))
            }
            @if ended { input type="hidden" name="phase" value=(e.phase.as_str()); }
            label { (t.s("tc-left-on"))
                input type="date" name="left_on" value=(v("left_on", e.left_on.map(|d| d.to_string()).unwrap_or_default())) readonly[ended] aria-invalid=[invalid("left_on")];
                (field_error(f, &form, "left_on"))
            }
            label { (t.s("tc-exit"))
                select name="exit" disabled[ended] aria-invalid=[invalid("exit")] {
                    option value="" { (t.s("tc-exit-none")) }
                    @for x in EXITS { option value=(x.as_str()) selected[exit == x.as_str()] { (t.s(&format!("tc-exit-{}", x.as_str()))) } }
                }
                (field_error(f, &form, "exit"))
            }
            @if ended { input type="hidden" name="exit" value=(exit); }
            @for (field, months, stored) in [("urine_negative_6m", 6, e.urine_negative_6m), ("urine_negative_12m", 12, e.urine_negative_12m)] {
                @let value = v(field, follow_up(stored).to_owned());
                label { (t.a("tc-follow-up", &[("months", &months.to_string())]))
                    select name=(field) aria-invalid=[invalid(field)] {
                        option value="" { (t.s("tc-follow-up-none")) }
                        option value="negative" selected[value == "negative"] { (t.s("tc-follow-up-negative")) }
                        option value="positive" selected[value == "positive"] { (t.s("tc-follow-up-positive")) }
                    }
                    (field_error(f, &form, field))
                }
            }
            button type="submit" { (t.s("tc-save")) }
        }
    }
}

async fn tc_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let list = uc::tc_listed(&st.app, &me.app_actor()).await?;
    let form = "tc-open";
    let v = |field: &str| f.value(form, field).map(str::to_owned).unwrap_or_default();
    let admitted = f
        .value(form, "admitted_on")
        .map(str::to_owned)
        .unwrap_or_else(|| st.today().to_string());
    let invalid = |field: &str| f.error_at(form, field).map(|_| "true");
    Ok(layout(
        &t,
        &t.s("tc-title"),
        Some(&me),
        html! {
            h1 { (t.s("tc-title")) }
            (flash(&f))
            section.card {
                h2 { (t.s("tc-admit")) }
                form method="post" action=(BASE) id="tc-open" {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    (form_notice(&f, form, &FIELDS))
                    label { (t.s("svc-field-uic")) input name="uic" value=(v("uic")) required aria-invalid=[invalid("uic")]; (field_error(&f, form, "uic")) }
                    label { (t.s("tc-admitted-on")) input type="date" name="admitted_on" value=(admitted) max=(st.today().to_string()) aria-invalid=[invalid("admitted_on")]; (field_error(&f, form, "admitted_on")) }
                    label { (t.s("tc-phase"))
                        select name="phase" {
                            @for p in PHASES { option value=(p.as_str()) selected[v("phase") == p.as_str()] { (t.s(&format!("tc-phase-{}", p.as_str()))) } }
                        }
                        (field_error(&f, form, "phase"))
                    }
                    button type="submit" { (t.s("tc-admit-button")) }
                }
            }
            h2 { (t.s("tc-episodes")) }
            @if list.is_empty() {
                p.muted { (t.s("tc-none")) }
            } @else {
                table.list id="tc-episodes" {
                    thead { tr { th { "UIC" } th { (t.s("tc-admitted-on")) } th { (t.s("tc-state")) } th { (t.s("tc-update")) } } }
                    tbody {
                        @for listed in &list {
                            @let e = &listed.episode.episode;
                            tr data-episode=(listed.episode.id) data-uic=(listed.uic) {
                                td { @if me.role().has(Permission::ClientRead) { a href={"/clients/" (listed.episode.client_id)} { (listed.uic) } } @else { code { (listed.uic) } } }
                                td { (e.admitted_on) }
                                td.tc-state {
                                    (t.s(&format!("tc-phase-{}", e.phase.as_str())))
                                    @if let (Some(left), Some(exit)) = (e.left_on, e.exit) {
                                        " · " (t.s(&format!("tc-exit-{}", exit.as_str()))) " " (left)
                                    }
                                }
                                td { (episode_form(&t, &me, &f, listed)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The admit form and the update forms (an update carries its episode's UIC and admission date
/// as they are shown; the episode's resident and admission never change).
#[derive(Debug, Deserialize)]
struct TcForm {
    #[serde(default)]
    uic: String,
    #[serde(default)]
    admitted_on: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    left_on: String,
    #[serde(default)]
    exit: String,
    #[serde(default)]
    urine_negative_6m: String,
    #[serde(default)]
    urine_negative_12m: String,
}

impl TcForm {
    fn values(&self) -> Vec<(String, String)> {
        [
            ("uic", &self.uic),
            ("admitted_on", &self.admitted_on),
            ("phase", &self.phase),
            ("left_on", &self.left_on),
            ("exit", &self.exit),
            ("urine_negative_6m", &self.urine_negative_6m),
            ("urine_negative_12m", &self.urine_negative_12m),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    fn request(&self, admitted_on: String) -> TcRequest {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let negative = |s: &str| match s {
            "negative" => Some(true),
            "positive" => Some(false),
            _ => None,
        };
        TcRequest {
            client_id: None,
            admitted_on,
            phase: self.phase.clone(),
            left_on: some(&self.left_on),
            exit: some(&self.exit),
            urine_negative_6m: negative(&self.urine_negative_6m),
            urine_negative_12m: negative(&self.urine_negative_12m),
        }
    }
}

fn saved(uic: &str) -> Response {
    flash::redirect(
        BASE,
        Tone::Ok,
        Message::Id {
            id: "tc-saved".into(),
            args: vec![("uic".into(), uic.to_owned())],
        },
    )
}

async fn admit_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(f): Form<TcForm>,
) -> Response {
    let req = f.request(f.admitted_on.clone());
    match uc::open_tc_by_uic(&st.app, &me.app_actor(), &f.uic, &req).await {
        Ok(listed) => saved(&listed.uic),
        Err(e) => refused_form(&st, BASE, "tc-open", e.into(), f.values()),
    }
}

async fn update_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<TcForm>,
) -> Response {
    let form = format!("tc-{id}");
    let req = f.request(f.admitted_on.clone());
    match uc::update_tc(&st.app, &me.app_actor(), id, &req).await {
        Ok(_) => saved(&f.uic),
        Err(e) => refused_form(&st, BASE, &form, e.into(), f.values()),
    }
}

/// Adds the therapeutic-community page.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(Get, BASE, Needs(ServiceRecord), "Therapeutic community"),
            tc_page,
        )
        .add(
            RouteSpec::web(Post, BASE, Needs(ServiceRecord), "Admit a resident"),
            admit_form,
        )
        .add(
            RouteSpec::web(Post, "/tc/{id}", Needs(ServiceRecord), "Move an episode on"),
            update_form,
        )
}
