//! The take-home policy page: the tiers in force and every version adopted before, for those who
//! decide take-home; and, for the manager, the editor that adopts a new version (checked by
//! `anxin_domain::takehome::Policy::validate`, refusals at the tier's field, typed values kept).
//! Its preview and co-signature by the CDC and the police come with the policy room.

use std::collections::HashMap;

use anxin_app::takehome::{self as uc, PolicyVersion};
use anxin_domain::takehome::{Policy, Tier};
use anxin_domain::{Access, Code, DomainError, Permission, Problem};
use axum::extract::{Form, State};
use axum::response::Response;
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::flash::{self, Message, Tone};
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{field_error, flash, form_notice, layout, refused_form, Flash, WebResult, T};

/// The editor's form id.
const FORM: &str = "policy";
/// The take-home periods a tier can offer.
pub(crate) const DAYS: std::ops::RangeInclusive<u8> = 2..=6;
/// A tier's thresholds: the field name of the API and the page's label.
pub(crate) const THRESHOLDS: [(&str, &str); 4] = [
    ("min_days_in_treatment", "policy-min-days"),
    ("min_attendance_30", "policy-att-30"),
    ("min_attendance_90", "policy-att-90"),
    ("last_urine_negative", "policy-urine"),
];

/// The form field of threshold `name` of the tier of `days` days.
pub(crate) fn input_name(days: u8, name: &str) -> String {
    format!("t{days}_{name}")
}

pub(crate) fn threshold_of(t: &Tier, name: &str) -> String {
    match name {
        "min_days_in_treatment" => t.min_days_in_treatment.to_string(),
        "min_attendance_30" => t.min_attendance_30.to_string(),
        "min_attendance_90" => t.min_attendance_90.to_string(),
        _ => t.last_urine_negative.to_string(),
    }
}

pub(crate) fn tiers_table(t: &T<'_>, p: &Policy, id: &str) -> Markup {
    html! {
        table.list id=(id) {
            thead { tr {
                th { (t.s("policy-days")) }
                @for (_, label) in THRESHOLDS { th { (t.s(label)) } }
            } }
            tbody {
                @for tier in &p.tiers {
                    tr data-days=(tier.days) {
                        td { (t.a("policy-days-n", &[("n", &tier.days.to_string())])) }
                        @for (name, _) in THRESHOLDS { td { (threshold_of(tier, name)) } }
                    }
                }
            }
        }
    }
}

/// The names of the tier inputs of a policy form, for its refusals.
pub(crate) fn tier_fields() -> Vec<String> {
    let mut fields = vec![];
    for d in DAYS {
        fields.push(format!("offer_{d}"));
        for (name, _) in THRESHOLDS {
            fields.push(input_name(d, name));
        }
    }
    fields
}

/// The tier inputs of a policy form `form_id`: a row per 2 to 6 days (offered, then each
/// threshold), filled from `start` (a tier it lacks from the default), or after a refusal with
/// what was typed, each refusal at its input.
pub(crate) fn tier_inputs(t: &T<'_>, f: &Flash, form_id: &str, start: &Policy) -> Markup {
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
    let defaults = Policy::default();
    let tier_at = |days: u8| {
        start
            .tiers
            .iter()
            .chain(defaults.tiers.iter())
            .find(|x| x.days == days)
            .cloned()
    };
    let invalid = |field: &str| f.error_at(form_id, field).map(|_| "true");
    html! {
        table.list.policy-editor {
            thead { tr {
                th { (t.s("policy-offer")) }
                @for (_, label) in THRESHOLDS { th { (t.s(label)) } }
            } }
            tbody {
                @for d in DAYS {
                    @let tier = tier_at(d);
                    @let offered = if refused { f.value(form_id, &format!("offer_{d}")).is_some() } else { start.tiers.iter().any(|x| x.days == d) };
                    tr data-days=(d) {
                        td { label.inline { input type="checkbox" name={"offer_" (d)} value="on" checked[offered]; " " (t.a("policy-days-n", &[("n", &d.to_string())])) } }
                        @for (name, label) in THRESHOLDS {
                            @let field = input_name(d, name);
                            td {
                                input name=(field) value=(v(&field, tier.as_ref().map(|x| threshold_of(x, name)).unwrap_or_default()))
                                    inputmode="decimal" aria-label={(t.a("policy-days-n", &[("n", &d.to_string())])) " · " (t.s(label))}
                                    aria-invalid=[invalid(&field)];
                                (field_error(f, form_id, &field))
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn policy_page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let actor = me.app_actor();
    let history = uc::policy_history(&st.app, &actor).await?;
    let current = uc::policy_in_force(&st.app, &actor).await?;
    let signed = history
        .first()
        .is_none_or(|v| v.policy.version != current.version)
        && current.version != Policy::default().version;
    let when = |v: &PolicyVersion| {
        v.adopted_at
            .with_timezone(&st.settings.utc_offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let by = |v: &PolicyVersion| v.adopted_by.clone().unwrap_or_else(|| t.s("policy-by-cli"));
    let refused = f.value(FORM, "version").is_some();
    let v = |field: &str, fallback: String| {
        if refused {
            f.value(FORM, field).map(str::to_owned).unwrap_or_default()
        } else {
            fallback
        }
    };
    let mut notice_fields = vec!["version".to_owned(), "approval_valid_days".to_owned()];
    notice_fields.extend(tier_fields());
    let notice_fields: Vec<&str> = notice_fields.iter().map(String::as_str).collect();
    let invalid = |field: &str| f.error_at(FORM, field).map(|_| "true");
    Ok(layout(
        &t,
        &t.s("policy-title"),
        Some(&me),
        html! {
            h1 { (t.s("policy-title")) }
            (flash(&f))
            @match history.first().filter(|_| !signed) {
                _ if signed => p id="policy-current" data-signed="true" { (t.a("policy-in-force-signed", &[("version", &current.version)])) " " a href="/takehome/proposals" { (t.s("room-title")) } },
                Some(v) => p id="policy-current" { (t.a("policy-in-force", &[("version", &v.policy.version), ("at", &when(v)), ("by", &by(v))])) },
                None => p.notice role="note" id="policy-current" { (t.a("policy-default", &[("version", &current.version)])) },
            }
            (tiers_table(&t, &current, "policy-tiers"))
            p { (t.a("policy-approval-days", &[("n", &current.approval_valid_days.to_string())])) }
            @if me.role().has(Permission::TakeHomePolicy) {
                section.card {
                    h2 { (t.s("policy-new")) }
                    p.muted { (t.s("policy-new-help")) }
                    form method="post" action="/takehome/policy" id="policy-form" {
                        input type="hidden" name="csrf" value=(me.csrf_token);
                        (form_notice(&f, FORM, &notice_fields))
                        label { (t.s("policy-version")) input name="version" value=(v("version", String::new())) required aria-invalid=[invalid("version")]; (field_error(&f, FORM, "version")) }
                        label { (t.s("policy-approval")) input name="approval_valid_days" inputmode="numeric" value=(v("approval_valid_days", current.approval_valid_days.to_string())) aria-invalid=[invalid("approval_valid_days")]; (field_error(&f, FORM, "approval_valid_days")) }
                        (tier_inputs(&t, &f, FORM, &current))
                        button type="submit" { (t.s("policy-adopt")) }
                    }
                }
            }
            h2 { (t.s("policy-history")) }
            @if history.is_empty() {
                p.muted { (t.s("policy-history-none")) }
            } @else {
                table.list id="policy-history" {
                    thead { tr { th { (t.s("policy-version")) } th { (t.s("policy-adopted-at")) } th { (t.s("policy-adopted-by")) } th { (t.s("policy-days")) } } }
                    tbody {
                        @for v in &history {
                            tr data-version=(v.policy.version) {
                                td { (v.policy.version) }
                                td { (when(v)) }
                                td { (by(v)) }
                                td { (v.policy.tiers.iter().map(|x| x.days.to_string()).collect::<Vec<_>>().join(" · ")) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Reads the editor's form into a policy; a number that does not parse is refused at its input.
pub(crate) fn read_form(form: &HashMap<String, String>) -> Result<(Policy, Vec<u8>), Problem> {
    let text = |name: &str| form.get(name).map(|s| s.trim()).unwrap_or_default();
    fn number<N: std::str::FromStr>(field: &str, raw: &str) -> Result<N, Problem> {
        raw.parse().map_err(|_| {
            if raw.is_empty() {
                Problem::new(Code::FieldRequired).field(field)
            } else {
                Problem::new(Code::NumberInvalid)
                    .field(field)
                    .arg("value", raw)
            }
        })
    }
    let mut tiers = Vec::new();
    let mut offered = Vec::new();
    for d in DAYS {
        if !form.contains_key(&format!("offer_{d}")) {
            continue;
        }
        let get = |name: &str| {
            let field = input_name(d, name);
            (text(&field).to_owned(), field)
        };
        let (raw, f) = get("min_days_in_treatment");
        let min_days_in_treatment = number(&f, &raw)?;
        let (raw, f) = get("min_attendance_30");
        let min_attendance_30 = number(&f, &raw)?;
        let (raw, f) = get("min_attendance_90");
        let min_attendance_90 = number(&f, &raw)?;
        let (raw, f) = get("last_urine_negative");
        let last_urine_negative = number(&f, &raw)?;
        tiers.push(Tier {
            days: d,
            min_days_in_treatment,
            min_attendance_30,
            min_attendance_90,
            last_urine_negative,
        });
        offered.push(d);
    }
    let policy = Policy {
        version: text("version").to_owned(),
        approval_valid_days: number("approval_valid_days", text("approval_valid_days"))?,
        tiers,
    };
    Ok((policy, offered))
}

/// A refusal's field as the page names it: `tiers[1].min_attendance_30` is the input of the
/// second tier offered.
pub(crate) fn page_field(p: Problem, offered: &[u8]) -> Problem {
    let Some(field) = p.field.clone() else {
        return p;
    };
    let renamed = field
        .strip_prefix("tiers[")
        .and_then(|rest| rest.split_once("]."))
        .and_then(|(i, name)| Some(input_name(*offered.get(i.parse::<usize>().ok()?)?, name)));
    match renamed {
        Some(f) => p.field(f),
        None => p,
    }
}

async fn adopt_form(
    State(st): State<AppState>,
    me: CurrentUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = "/takehome/policy";
    let mut values: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !form.contains_key("version") {
        values.push(("version".into(), String::new()));
    }
    let adopted = match read_form(&form) {
        Err(p) => Err(AppError::Domain(DomainError::Refused(p))),
        Ok((policy, offered)) => uc::adopt_policy(&st.app, &me.app_actor(), &policy)
            .await
            .map(|()| policy.version.clone())
            .map_err(|e| match AppError::from(e) {
                AppError::Domain(DomainError::Refused(p)) => {
                    AppError::Domain(DomainError::Refused(page_field(p, &offered)))
                }
                other => other,
            }),
    };
    match adopted {
        Ok(version) => flash::redirect(
            base,
            Tone::Ok,
            Message::Id {
                id: "policy-adopted".into(),
                args: vec![("version".into(), version)],
            },
        ),
        Err(e) => refused_form(&st, base, FORM, e, values),
    }
}

/// Adds the policy pages.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Get,
                "/takehome/policy",
                Needs(TakeHomeManage),
                "The take-home policy and its versions",
            ),
            policy_page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/takehome/policy",
                Needs(TakeHomePolicy),
                "Adopt a new policy version",
            ),
            adopt_form,
        )
}
