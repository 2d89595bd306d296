//! Signed checkpoints of the audit chain, kept outside the database: the files `serve` writes
//! at start and daily and `anxin audit checkpoint` writes on demand, and the page where an
//! administrator or manager signs one, reads the latest, prints it or downloads it to hand to
//! a second party (`anxin audit verify --checkpoints DIR` checks the log against them).

use std::path::{Path, PathBuf};

use anxin_domain::audit::Checkpoint;
use anxin_domain::{Access, Permission};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::auth::CurrentUser;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{layout, Flash, WebResult, T};

/// Writes `cp` as `checkpoint-<seq>-<ms>.txt` in `dir` (made if missing).
pub fn write(dir: &Path, cp: &Checkpoint) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("checkpoint-{:012}-{}.txt", cp.seq, cp.at_ms));
    std::fs::write(&path, cp.to_text())?;
    Ok(path)
}

/// Every `checkpoint-*.txt` in `dir`, oldest first; a file that is not one is an error naming it.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.starts_with("checkpoint-") && name.ends_with(".txt")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let cp =
            Checkpoint::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        out.push(cp);
    }
    out.sort_by_key(|c| (c.seq, c.at_ms));
    Ok(out)
}

/// The checkpoints kept (none when the directory does not exist yet).
fn kept(st: &AppState) -> Vec<Checkpoint> {
    let dir = &st.settings.checkpoint_dir;
    if !dir.is_dir() {
        return Vec::new();
    }
    read_all(dir).unwrap_or_else(|e| {
        tracing::error!(error = %e, "AUDIT ALARM: a checkpoint file cannot be read");
        Vec::new()
    })
}

fn time_of(st: &AppState, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&st.settings.utc_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

async fn page(State(st): State<AppState>, me: CurrentUser, f: Flash) -> WebResult<Markup> {
    // The route needs `AuditRead` (administrators and managers).
    let t = T::of(&st, &me);
    let all = kept(&st);
    let latest = all.last();
    Ok(layout(
        &t,
        &t.s("checkpoints-title"),
        Some(&me),
        html! {
            h1 { (t.s("checkpoints-title")) }
            (crate::web::flash(&f))
            p { (t.s("checkpoints-help")) }
            p { (t.s("checkpoints-verify")) " " code id="checkpoints-command" { "anxin audit verify --checkpoints DIR" } }
            @match latest {
                Some(cp) => {
                    section.card id="latest-checkpoint" data-seq=(cp.seq) {
                        h2 { (t.s("checkpoints-latest")) }
                        dl {
                            dt { (t.s("checkpoints-seq")) } dd { (cp.seq) }
                            dt { (t.s("checkpoints-at")) } dd { (time_of(&st, cp.at_ms)) }
                        }
                        pre.checkpoint { (cp.to_text()) }
                        p.no-print {
                            a href="/audit/checkpoints/latest.txt" id="checkpoint-download" download { (t.s("checkpoints-download")) }
                            " · "
                            button type="button" onclick="window.print()" { (t.s("checkpoints-print")) }
                        }
                    }
                }
                None => { p.muted id="no-checkpoint" { (t.s("checkpoints-none")) } }
            }
            form.no-print method="post" action="/audit/checkpoints" id="checkpoint-form" {
                input type="hidden" name="csrf" value=(me.csrf_token);
                button type="submit" { (t.s("checkpoints-sign")) }
            }
            @if all.len() > 1 {
                section.card.no-print {
                    h2 { (t.s("checkpoints-kept")) }
                    table.list id="checkpoints" {
                        thead { tr { th { (t.s("checkpoints-seq")) } th { (t.s("checkpoints-at")) } } }
                        tbody { @for cp in all.iter().rev().take(30) { tr { td { (cp.seq) } td { (time_of(&st, cp.at_ms)) } } } }
                    }
                }
            }
        },
    ))
}

async fn sign(State(st): State<AppState>, me: CurrentUser) -> Response {
    let r = async {
        let cp = anxin_app::audit::checkpoint(&st.app, &me.app_actor()).await?;
        Ok::<_, crate::error::AppError>(cp)
    }
    .await;
    let (tone, id, args) = match r {
        Ok(Some(cp)) => match write(&st.settings.checkpoint_dir, &cp) {
            Ok(_) => (
                crate::flash::Tone::Ok,
                "checkpoints-signed",
                vec![("seq".to_owned(), cp.seq.to_string())],
            ),
            Err(e) => {
                tracing::error!(error = %e, "AUDIT ALARM: checkpoint not written");
                (crate::flash::Tone::Error, "checkpoints-not-written", vec![])
            }
        },
        Ok(None) => (crate::flash::Tone::Error, "checkpoints-no-key", vec![]),
        Err(e) => return e.into_response(),
    };
    crate::flash::redirect(
        "/audit/checkpoints",
        tone,
        crate::flash::Message::Id {
            id: id.into(),
            args,
        },
    )
}

async fn latest(State(st): State<AppState>, _me: CurrentUser) -> Response {
    match kept(&st).last() {
        Some(cp) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"checkpoint-{}.txt\"", cp.seq),
                ),
            ],
            cp.to_text(),
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The checkpoint page and its form.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Get,
                "/audit/checkpoints",
                Needs(AuditRead),
                "Signed checkpoints of the audit trail",
            ),
            page,
        )
        .add(
            RouteSpec::web(
                Post,
                "/audit/checkpoints",
                Needs(AuditRead),
                "Sign a checkpoint of the audit trail now",
            ),
            sign,
        )
        .add(
            RouteSpec::web(
                Get,
                "/audit/checkpoints/latest.txt",
                Needs(AuditRead),
                "Download the latest signed checkpoint",
            ),
            latest,
        )
}
