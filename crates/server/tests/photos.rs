//! Identity at the window: the client's photo taken on the client's page, stored only as
//! ciphertext without its Exif, served to those who dose (each serving audited) and to nobody
//! else, shown beside the dose at the window; the printable card's barcode reads back as the UIC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anxin_domain::Role;
use anxin_server::testing::TestApp;
use axum::http::{header, Method, StatusCode};
use base64::Engine;
use serde_json::json;

/// A real 1×1 PNG.
const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_1X1)
        .unwrap()
}

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A small JPEG whose APP1 segment holds Exif with a GPS position.
fn jpeg_with_exif() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    j.extend(segment(
        0xE1,
        b"Exif\0\0MM\0*GPSLatitude 31.2304N 121.4737E",
    ));
    j.extend(segment(0xDB, &[0; 65]));
    j.extend(segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
    j.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
    j.extend_from_slice(&[0x12, 0x34, 0x56]);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Centre {
    app: TestApp,
    id: i64,
}

/// A centre with a doctor, a nurse, a counsellor, a peer educator, a CDC analyst and a police
/// officer, and client YX-0042 on 30 mg from today (within the induction limits).
async fn centre() -> Centre {
    centre_on(TestApp::new().await).await
}

async fn centre_on(app: TestApp) -> Centre {
    let site = app.site("YX01").await;
    for (name, role) in [
        ("doctor", Role::Prescriber),
        ("nurse", Role::Dispenser),
        ("counsellor", Role::Counsellor),
        ("peer", Role::PeerEducator),
        ("cdc", Role::CdcAnalyst),
        ("police", Role::PsbOfficer),
    ] {
        app.user(&site, name, role).await;
    }
    let doctor = app.login("doctor").await;
    let today = app.state.today().to_string();
    let c = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(&doctor),
            Some(json!({"uic": "YX-0042", "enrolled_on": today})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let id = c.json()["id"].as_i64().unwrap();
    let o = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/orders"),
            Some(&doctor),
            Some(json!({"kind": "induction", "start": today, "mg": 30, "split": 1})),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    Centre { app, id }
}

async fn photo_reads(app: &TestApp, id: i64) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT reason FROM audit_log WHERE action = 'client.photo.read' AND record_id = $1 ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(app.store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.0)
    .collect()
}

async fn stored(app: &TestApp, id: i64) -> (Vec<u8>, String) {
    sqlx::query_as("SELECT sealed, media_type FROM client_photos WHERE client_id = $1")
        .bind(id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_nurse_takes_a_photo_and_the_window_shows_it_beside_the_dose() {
    nurse_takes_a_photo(centre().await).await;
}

#[tokio::test]
async fn the_nurse_takes_a_photo_and_the_window_shows_it_beside_the_dose_on_postgres() {
    nurse_takes_a_photo(centre_on(TestApp::postgres().await).await).await;
}

async fn nurse_takes_a_photo(Centre { app, id }: Centre) {
    let mut nurse = app.browser("nurse", "en").await;
    // Before: the window says to check the identity another way.
    let page = nurse.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("id=\"photo-form\""), "{}", page.text);
    assert!(page.text.contains("capture=\"user\""));
    assert!(page.text.contains("No photo yet."));

    let page = nurse
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "me.png",
            "image/png",
            &png(),
        )
        .await;
    assert!(page.text.contains("Photo saved."), "{}", page.text);
    assert!(page
        .text
        .contains(&format!("src=\"/clients/{id}/photo?for=record\"")));
    // At rest: ciphertext only, no PNG signature anywhere in it.
    let (sealed, media) = stored(&app, id).await;
    assert_eq!(media, "image/png");
    assert!(!contains(&sealed, b"PNG") && !contains(&sealed, b"IHDR"));

    // Served to the nurse, private and never cached, and every serving is in the trail.
    let img = nurse.get(&format!("/clients/{id}/photo?for=record")).await;
    assert_eq!(img.status, StatusCode::OK);
    assert_eq!(img.headers[header::CONTENT_TYPE], "image/png");
    assert!(img.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("no-store"));
    assert_eq!(img.bytes, png());
    assert_eq!(photo_reads(&app, id).await, ["record"]);

    // At the window: the dose's confirmation with the photo beside it.
    let window = nurse.submit("/dispensing", &[("uic", "YX-0042")]).await;
    assert!(window.text.contains("30 mg given"), "{}", window.text);
    assert!(
        window.text.contains("class=\"client-photo\""),
        "{}",
        window.text
    );
    assert!(window
        .text
        .contains(&format!("src=\"/clients/{id}/photo?for=window\"")));
    assert!(window.text.contains("alt=\"Photo of YX-0042\""));
    // The window field takes a scanner's UIC and Enter at once.
    assert!(window.text.contains("autofocus"));
    let img = nurse.get(&format!("/clients/{id}/photo?for=window")).await;
    assert_eq!(img.status, StatusCode::OK);
    assert_eq!(photo_reads(&app, id).await, ["record", "window"]);
    // A second dose is refused, and the refusal shows the photo too.
    let again = nurse.submit("/dispensing", &[("uic", "YX-0042")]).await;
    assert!(again.text.contains("flash error"), "{}", again.text);
    assert!(again.text.contains("class=\"client-photo\""));
    // Through the API as well.
    let token = app.login("nurse").await;
    let api = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/photo?for=window"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.bytes, png());
    app.cleanup().await;
}

#[tokio::test]
async fn a_client_without_a_photo_is_checked_another_way_at_the_window() {
    let Centre { app, .. } = centre().await;
    let mut nurse = app.browser("nurse", "zh-CN").await;
    let window = nurse.submit("/dispensing", &[("uic", "YX-0042")]).await;
    assert!(window.text.contains("id=\"no-photo\""), "{}", window.text);
    assert!(window.text.contains("无照片——请核对身份。"));
    assert!(!window.text.contains("class=\"client-photo\""));
    app.cleanup().await;
}

#[tokio::test]
async fn a_jpeg_loses_its_exif_before_it_is_stored() {
    let Centre { app, id } = centre().await;
    let mut doctor = app.browser("doctor", "en").await;
    let jpeg = jpeg_with_exif();
    let page = doctor
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "IMG_0001.JPG",
            "image/jpeg",
            &jpeg,
        )
        .await;
    assert!(page.text.contains("Photo saved."), "{}", page.text);
    let (sealed, media) = stored(&app, id).await;
    assert_eq!(media, "image/jpeg");
    assert!(!contains(&sealed, &[0xFF, 0xD8, 0xFF]) && !contains(&sealed, b"JFIF"));
    let img = doctor.get(&format!("/clients/{id}/photo")).await;
    assert_eq!(img.headers[header::CONTENT_TYPE], "image/jpeg");
    assert!(img.bytes.starts_with(&[0xFF, 0xD8, 0xFF, 0xE0]));
    assert!(!contains(&img.bytes, b"Exif") && !contains(&img.bytes, b"GPS"));
    assert!(contains(&img.bytes, b"JFIF"));
    assert_eq!(img.bytes.len(), jpeg.len() - 4 - 40);
    app.cleanup().await;
}

#[tokio::test]
async fn a_text_file_or_a_large_one_is_refused_at_the_field_in_the_pages_language() {
    let Centre { app, id } = centre().await;
    let mut nurse = app.browser("nurse", "zh-CN").await;
    let path = format!("/clients/{id}/photo");
    nurse.get(&format!("/clients/{id}")).await;
    // A text file that claims to be a PNG: the bytes decide.
    let page = nurse
        .upload(
            &path,
            &[],
            "photo",
            "notes.png",
            "image/png",
            b"not a picture at all",
        )
        .await;
    assert!(
        page.text.contains("data-field=\"photo\">此文件不是照片"),
        "{}",
        page.text
    );
    // Over 2 MiB.
    let mut big = png();
    big.resize(2 * 1024 * 1024 + 10, 0);
    let page = nurse
        .upload(&path, &[], "photo", "big.png", "image/png", &big)
        .await;
    assert!(
        page.text
            .contains("data-field=\"photo\">照片过大（2049 KB）；最大 2048 KB。"),
        "{}",
        page.text
    );
    // Far over what is read at all: the same refusal, nothing read.
    let huge = vec![0u8; 5 * 1024 * 1024];
    let page = nurse
        .upload(&path, &[], "photo", "huge.jpg", "image/jpeg", &huge)
        .await;
    assert!(page.text.contains("照片过大"), "{}", page.text);
    let none: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM client_photos")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(none.0, 0);
    // In English, by code at the field.
    let mut en = app.browser("doctor", "en").await;
    en.get(&format!("/clients/{id}")).await;
    let page = en
        .upload(&path, &[], "photo", "a.txt", "text/plain", b"hello")
        .await;
    assert!(
        page.text.contains("This file is not a photo"),
        "{}",
        page.text
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_photo_is_not_for_roles_that_do_not_dose() {
    let Centre { app, id } = centre().await;
    let mut nurse = app.browser("nurse", "en").await;
    nurse
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "me.png",
            "image/png",
            &png(),
        )
        .await;
    for who in ["peer", "cdc", "police", "counsellor"] {
        let token = app.login(who).await;
        for path in [
            format!("/api/v1/clients/{id}/photo"),
            format!("/clients/{id}/photo"),
            format!("/clients/{id}/card"),
        ] {
            let a = app.call(Method::GET, &path, Some(&token), None).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{who} {path}");
            assert!(!contains(&a.bytes, b"PNG"));
        }
    }
    // The peer educator's view of the record shows no photo and no upload.
    let mut peer = app.browser("peer", "en").await;
    let page = peer.get(&format!("/clients/{id}")).await;
    assert!(!page.text.contains("photo-form") && !page.text.contains("client-photo"));
    // The counsellor takes photos at intake but does not see them.
    let mut counsellor = app.browser("counsellor", "en").await;
    let page = counsellor.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains("photo-form") && page.text.contains("photo-on-record"));
    assert!(!page.text.contains("class=\"client-photo\""));
    assert!(photo_reads(&app, id).await.is_empty());
    // Another centre's nurse: not found, as for a client that does not exist.
    let other = app.site("ZZ02").await;
    app.user(&other, "nurse2", Role::Dispenser).await;
    let token = app.login("nurse2").await;
    let a = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{id}/photo"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// The Code 128 table, as the standard prints it (bar, space, bar, space, bar, space).
const TABLE: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];

/// Reads a Code 128 (subset B) barcode back from the card's SVG: bar positions and widths to
/// element widths in modules, to symbols, the check symbol verified, to text.
fn decode_svg(svg: &str) -> String {
    let attr = |tag: &str, name: &str| -> u32 {
        let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[at..].split('"').next().unwrap().parse().unwrap()
    };
    let module = attr(svg, "data-module");
    let bars: Vec<(u32, u32)> = svg
        .split("<rect class=\"bar\"")
        .skip(1)
        .map(|t| (attr(t, "x"), attr(t, "width")))
        .collect();
    let mut widths = Vec::new();
    for (i, (x, w)) in bars.iter().enumerate() {
        widths.push(w / module);
        if let Some((next, _)) = bars.get(i + 1) {
            widths.push((next - x - w) / module);
        }
    }
    let pattern = |ws: &[u32]| ws.iter().map(|w| w.to_string()).collect::<String>();
    let mut symbols = Vec::new();
    let mut rest = &widths[..];
    while rest.len() > 7 {
        let p = pattern(&rest[..6]);
        symbols.push(TABLE.iter().position(|t| *t == p).expect("a known symbol"));
        rest = &rest[6..];
    }
    assert_eq!(pattern(rest), TABLE[106], "the stop pattern ends it");
    assert_eq!(symbols[0], 104, "start B");
    let (check, data) = symbols[1..].split_last().unwrap();
    let sum: usize = 104
        + data
            .iter()
            .enumerate()
            .map(|(i, v)| (i + 1) * v)
            .sum::<usize>();
    assert_eq!(sum % 103, *check, "check symbol");
    data.iter().map(|v| char::from(*v as u8 + 32)).collect()
}

#[tokio::test]
async fn the_card_holds_the_uic_as_a_barcode_and_nothing_that_names_the_treatment() {
    let Centre { app, id } = centre().await;
    let mut nurse = app.browser("nurse", "en").await;
    let page = nurse.get(&format!("/clients/{id}")).await;
    assert!(page.text.contains(&format!("href=\"/clients/{id}/card\"")));
    nurse
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "me.png",
            "image/png",
            &png(),
        )
        .await;
    let card = nurse.get(&format!("/clients/{id}/card")).await;
    assert_eq!(card.status, StatusCode::OK);
    let start = card.text.find("<svg").unwrap();
    let end = card.text.find("</svg>").unwrap();
    assert_eq!(decode_svg(&card.text[start..end]), "YX-0042");
    assert!(card.text.contains("id=\"card-uic\">YX-0042<"));
    assert!(card.text.contains("class=\"client-photo\""));
    let lower = card.text.to_lowercase();
    for word in [
        "methadone",
        "mmt",
        "clinic",
        "centre",
        "treatment",
        "dose",
        "drug",
        "anxin",
        "美沙酮",
        "门诊",
        "治疗",
        "安心",
        "yx01",
    ] {
        assert!(!lower.contains(word), "the card says {word}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn the_intake_wizard_takes_the_photo_and_comes_back_to_its_step() {
    let Centre { app, id } = centre().await;
    let mut counsellor = app.browser("counsellor", "en").await;
    let step = counsellor
        .get(&format!("/clients/{id}/intake/agreement"))
        .await;
    assert!(step.text.contains("id=\"photo-form\""), "{}", step.text);
    assert!(step.text.contains("name=\"then\" value=\"intake\""));
    let page = counsellor
        .upload(
            &format!("/clients/{id}/photo"),
            &[("then", "intake")],
            "photo",
            "me.png",
            "image/png",
            &png(),
        )
        .await;
    assert!(page.text.contains("Photo saved."), "{}", page.text);
    assert!(
        page.text.contains("id=\"intake-next\""),
        "back in the wizard"
    );
    let who: (Option<i64>,) =
        sqlx::query_as("SELECT taken_by FROM client_photos WHERE client_id = $1")
            .bind(id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(who.0.is_some());
    // Replacing keeps one photo.
    counsellor
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "me.jpg",
            "image/jpeg",
            &jpeg_with_exif(),
        )
        .await;
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM client_photos")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(n.0, 1);
    assert_eq!(stored(&app, id).await.1, "image/jpeg");
    app.cleanup().await;
}

#[tokio::test]
async fn a_guest_from_another_centre_is_checked_another_way_and_their_photo_stays_home() {
    let Centre { app, id } = centre().await;
    let mut nurse = app.browser("nurse", "en").await;
    nurse.get(&format!("/clients/{id}")).await;
    nurse
        .upload(
            &format!("/clients/{id}/photo"),
            &[],
            "photo",
            "me.png",
            "image/png",
            &png(),
        )
        .await;
    let km = app.site("KM01").await;
    app.user(&km, "km.nurse", Role::Dispenser).await;
    let doctor = app.login("doctor").await;
    let today = app.state.today();
    let g = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/guest-dosing"),
            Some(&doctor),
            Some(json!({"site": "KM01", "from": today.to_string(), "to": (today + chrono::Duration::days(3)).to_string()})),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.text);
    let mut km_nurse = app.browser("km.nurse", "en").await;
    let window = km_nurse.submit("/dispensing", &[("uic", "YX-0042")]).await;
    assert!(window.text.contains("30 mg given"), "{}", window.text);
    assert!(window.text.contains("No photo — check identity."));
    assert!(
        !window.text.contains("client-photo") && !window.text.contains(&format!("/clients/{id}/"))
    );
    app.cleanup().await;
}
