//! Identity at the window: the client's photo and printable card, over
//! [`anxin_app::photos`]. The photo is taken on the client's page or in the intake wizard (a
//! file, or the browser's camera through the page script), served only to the roles that dose
//! (`GET /clients/{id}/photo`, private and never cached, every serving an audited read), and
//! shown at the window beside the dose it confirms. The card (`GET /clients/{id}/card`) holds
//! the UIC as a Code 128 barcode ([`crate::code128`]), the UIC in text and the photo, and no
//! name, drug, clinic or treatment word: a scanner types the UIC and Enter into the window's
//! field, which doses.

use anxin_app::photos::{Purpose, WindowPhoto};
use anxin_domain::{Access, Permission};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::routes::{RouteSpec, RouteTable, Verb};
use crate::state::AppState;
use crate::web::{error_page, field_error, form_notice, refused_form, Flash, WebResult, T};

/// The media types a photo is served as.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

#[derive(Deserialize, Default)]
struct PhotoQuery {
    /// Why the photo is opened: `window`, `record` or `card` (recorded in the audit trail).
    #[serde(default, rename = "for")]
    purpose: Option<String>,
}

async fn serve(
    st: &AppState,
    me: &CurrentUser,
    id: &str,
    q: &PhotoQuery,
) -> Result<Response, AppError> {
    let id = anxin_app::parse_id(id)?;
    let purpose = Purpose::parse(q.purpose.as_deref().unwrap_or_default());
    let image = anxin_app::photos::photo(&st.app, &me.app_actor(), id, purpose)
        .await?
        .ok_or_else(|| anxin_domain::DomainError::NotFound(format!("photo of client {id}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, image.media_type),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        image.bytes,
    )
        .into_response())
}

async fn photo_page(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<PhotoQuery>,
) -> Response {
    serve(&st, &me, &id, &q).await.unwrap_or_else(error_page)
}

async fn photo_api(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<PhotoQuery>,
) -> Response {
    serve(&st, &me, &id, &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Takes the photo from an upload form (`photo`: the file or the camera's JPEG; `then`:
/// `intake` when sent from the wizard) and goes back to the page it came from.
async fn upload(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Response {
    let mut then = None;
    let mut photo = None;
    let mut unreadable = false;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("then") => then = field.text().await.ok(),
                Some("photo") => match field.bytes().await {
                    Ok(b) => photo = Some(b),
                    Err(_) => unreadable = true,
                },
                _ => {}
            },
            Ok(None) => break,
            Err(_) => {
                unreadable = true;
                break;
            }
        }
    }
    let cid = match anxin_app::parse_id(&id) {
        Ok(c) => c,
        Err(e) => return error_page(e.into()),
    };
    let base = if then.as_deref() == Some(crate::intake::THEN) {
        crate::intake::step_path(&cid.to_string(), "agreement")
    } else {
        format!("/clients/{cid}")
    };
    let result = if unreadable {
        Err(
            anxin_domain::Problem::new(anxin_domain::Code::PhotoNotAnImage)
                .field("photo")
                .into(),
        )
    } else {
        anxin_app::photos::set_photo(
            &st.app,
            &me.app_actor(),
            cid,
            photo.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(AppError::from)
    };
    match result {
        Ok(_) => crate::flash::redirect(
            &base,
            crate::flash::Tone::Ok,
            crate::flash::Message::Id {
                id: "photo-saved".into(),
                args: vec![],
            },
        ),
        Err(e) => refused_form(&st, &base, "photo", e, vec![]),
    }
}

/// The photo section of a client's page and of the intake wizard: the photo for those who
/// dose, the upload (file or camera) for those who take it, the card's link.
pub(crate) async fn section(
    t: &T<'_>,
    me: &CurrentUser,
    client_id: i64,
    f: &Flash,
    then: Option<&str>,
) -> WebResult<Markup> {
    let role = me.role();
    if !role.has(Permission::PhotoView) && !role.has(Permission::PhotoSet) {
        return Ok(html! {});
    }
    let info = anxin_app::photos::info(&t.st.app, &me.app_actor(), client_id).await?;
    Ok(html! {
        section.card id="photo" {
            h2 { (t.s("photo-title")) }
            @if role.has(Permission::PhotoView) {
                @if info.is_some() {
                    img.client-photo src={"/clients/" (client_id) "/photo?for=record"} alt=(t.s("photo-alt"));
                } @else {
                    p.muted id="photo-none" { (t.s("photo-none")) }
                }
            } @else if info.is_some() {
                p.muted id="photo-on-record" { (t.s("photo-on-record")) }
            }
            @if role.has(Permission::PhotoSet) {
                form method="post" action={"/clients/" (client_id) "/photo"} enctype="multipart/form-data" id="photo-form" data-camera {
                    input type="hidden" name="csrf" value=(me.csrf_token);
                    @if let Some(x) = then { input type="hidden" name="then" value=(x); }
                    (form_notice(f, "photo", &["photo"]))
                    label { (t.s("photo-file"))
                        input type="file" name="photo" accept="image/jpeg,image/png,image/webp" capture="user" required aria-invalid=[f.error_at("photo", "photo").map(|_| "true")];
                        (field_error(f, "photo", "photo"))
                    }
                    p.muted { (t.s("photo-help")) }
                    div.camera data-camera-ui hidden {
                        video data-camera-video autoplay playsinline muted aria-label=(t.s("photo-camera")) {}
                        canvas data-camera-canvas hidden {}
                        button type="button" data-camera-start { (t.s("photo-camera-start")) }
                        " "
                        button type="button" data-camera-take hidden { (t.s("photo-camera-take")) }
                    }
                    button type="submit" id="photo-submit" { (t.s("photo-save")) }
                }
            }
            @if role.has(Permission::PhotoView) {
                p { a href={"/clients/" (client_id) "/card"} id="client-card" { (t.s("card-link")) } }
            }
        }
    })
}

/// Beside a dose or a refusal at the window: the client's photo, or the word to check the
/// identity another way.
pub(crate) fn at_window(t: &T<'_>, w: &WindowPhoto) -> Markup {
    html! {
        div.window-client id="window-client" data-uic=(w.uic) {
            @if w.has_photo {
                img.client-photo src={"/clients/" (w.client_id) "/photo?for=window"} alt=(t.a("photo-alt-uic", &[("uic", &w.uic)])) width="160";
            } @else {
                p.no-photo id="no-photo" role="status" { (t.s("photo-none-check")) }
            }
        }
    }
}

/// The printable card: the UIC as a barcode and in text, and the photo. Nothing else: no
/// name, no drug, clinic or treatment word (the card is carried and may be seen by others).
async fn card(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> WebResult<Markup> {
    let t = T::of(&st, &me);
    let cid = anxin_app::parse_id(&id).map_err(AppError::from)?;
    let client = anxin_app::record::open(&st.app, &me.app_actor(), cid, "card").await?;
    let info = anxin_app::photos::info(&st.app, &me.app_actor(), cid).await?;
    let barcode = crate::code128::svg(&client.uic, 2, 70).unwrap_or_default();
    Ok(html! {
        (DOCTYPE)
        html lang=(t.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (client.uic) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body.card-page {
                div.id-card id="id-card" {
                    @if info.is_some() {
                        img.client-photo src={"/clients/" (cid) "/photo?for=card"} alt=(client.uic);
                    }
                    div.id-card-code {
                        (PreEscaped(barcode))
                        p.uic id="card-uic" { (client.uic) }
                    }
                }
                p.noprint {
                    button type="button" data-print { (t.s("card-print")) }
                    " "
                    a href={"/clients/" (cid)} { (t.s("card-back")) }
                }
            }
        }
    })
}

/// Adds the photo and card routes.
pub fn routes(table: RouteTable) -> RouteTable {
    use Access::*;
    use Permission::*;
    use Verb::*;
    table
        .add(
            RouteSpec::web(
                Get,
                "/clients/{id}/photo",
                Needs(PhotoView),
                "A client's photo (audited)",
            ),
            photo_page,
        )
        .add_upload(
            RouteSpec::web(
                Post,
                "/clients/{id}/photo",
                Needs(PhotoSet),
                "Take or replace a client's photo",
            ),
            upload,
        )
        .add(
            RouteSpec::web(
                Get,
                "/clients/{id}/card",
                Needs(PhotoView),
                "A client's printable card",
            ),
            card,
        )
        .add(
            RouteSpec::api(
                Get,
                "/api/v1/clients/{id}/photo",
                Needs(PhotoView),
                "clients",
                "A client's photo (audited with its purpose)",
            )
            .query(
                "for",
                "string",
                "why it is opened: window, record or card (recorded in the audit trail)",
            )
            .answers_binary(IMAGE_TYPES),
            photo_api,
        )
}
