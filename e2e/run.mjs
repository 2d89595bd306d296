// End-to-end tests of Anxin in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core). For each interface language the runner starts the real `anxin serve --demo`
// on a fresh data directory with a fixed clock, walks a centre's day through the pages, checks
// usability (no horizontal scrolling at 1366×768 and 390×844, a label on every field, keyboard
// focus order), looks for untranslated text in the Chinese pages, writes screenshots to
// target/e2e-screenshots/ and prints the page-load times. Run: `node --test e2e/run.mjs`
// (after `npm ci` in e2e/); see README.md, "End-to-end tests".

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
const BIN = process.env.ANXIN_BIN ? path.resolve(process.env.ANXIN_BIN) : path.join(TARGET, 'debug', 'anxin');
const SHOTS = process.env.E2E_SCREENSHOTS || path.join(REPO, 'target', 'e2e-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The centre's clock: a Monday morning, after the 07:00 code hour, so today is fixed.
const CLOCK_START = '2026-11-23T08:30:00+08:00';
// With E2E_POSTGRES_URL (a superuser URL), each server runs on a fresh PostgreSQL database
// instead of the embedded SQLite file; the databases are dropped at the end.
const PG = process.env.E2E_POSTGRES_URL || '';

/** Runs SQL on the PostgreSQL server of E2E_POSTGRES_URL; throws when psql fails. */
function psql(sql) {
  const r = spawnSync('psql', [PG, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr || r.error}`);
}

/** A fresh database for the server labelled `label`, and its URL. */
function freshDatabase(label) {
  const name = `anxin_e2e_${label.toLowerCase().replace(/[^a-z0-9]/g, '_')}_${process.pid}`;
  psql(`DROP DATABASE IF EXISTS ${name}`);
  psql(`CREATE DATABASE ${name}`);
  const u = new URL(PG);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}
const TODAY = '2026-11-23';
const TOMORROW = '2026-11-24';
// The next morning, for the walks that need a night to pass (the server restarts on its data).
const NEXT_MORNING = '2026-11-24T08:30:00+08:00';
const PASSWORD = 'anxin-demo-2026';
const SIZES = [
  { width: 1366, height: 768 },
  { width: 390, height: 844 },
];
const LANGS = (process.env.E2E_LANGS || 'zh-CN,en').split(',');

fs.mkdirSync(SHOTS, { recursive: true });

// ---------------------------------------------------------------- the server

if (!process.env.ANXIN_BIN && !process.env.E2E_NO_BUILD) {
  const r = spawnSync('cargo', ['build', '-p', 'anxin', '--bin', 'anxin'], {
    cwd: REPO,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('cargo build -p anxin failed');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const servers = [];

/** The server's environment: no ANXIN_* variable (the server reads them as configuration and
 * refuses unknown ones, e.g. ANXIN_BIN or CI's ANXIN_TEST_POSTGRES_URL); its config file rules. */
function serverEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANXIN_')));
  env.RUST_LOG ??= 'warn';
  return env;
}

/** Starts `anxin serve --demo` on a fresh data directory (or again on `server`'s, with the clock
 * at `clock`); resolves once /healthz answers. */
async function startServer(label, again = null, clock = CLOCK_START) {
  const dir = again ? again.dir : fs.mkdtempSync(path.join(os.tmpdir(), `anxin-e2e-${label}-`));
  const config = path.join(dir, 'anxin.toml');
  const db = again ? again.db : PG ? freshDatabase(label) : null;
  fs.writeFileSync(
    config,
    `clock_start = "${clock}"\n${db ? `database_url = "${db.url}"\n` : ''}\n[sms]\nprovider = "file"\nfile_path = "${path.join(dir, 'sms.log')}"\npoll_interval_ms = 200\n`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const proc = spawn(
    BIN,
    ['--data-dir', path.join(dir, 'data'), '--config', config, 'serve', '--listen', `127.0.0.1:${port}`, '--demo'],
    { stdio: ['ignore', log, log], env: serverEnv() },
  );
  const server = again ?? { dir, db };
  Object.assign(server, { url, proc, exited: false });
  proc.on('exit', () => (server.exited = true));
  if (!again) servers.push(server);
  const started = Date.now();
  for (;;) {
    if (server.exited) throw new Error(`anxin serve exited:\n${tail(server)}`);
    if (Date.now() - started > 300_000) throw new Error(`no /healthz after 300 s:\n${tail(server)}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  server.startMs = Date.now() - started;
  return server;
}

/** Stops `server` and starts it again on the same data with the clock at `clock`. */
async function restartServer(server, clock) {
  const exited = new Promise((r) => (server.exited ? r() : server.proc.once('exit', r)));
  stopServer(server);
  await exited;
  return startServer(null, server, clock);
}

/** The stock page's movement lines (mg), as a dispenser reads them. */
async function stockLines(page, server) {
  await page.goto(`${server.url}/stock`);
  const mg = async (id) => Number((await text(page, `#${id}`)).replace(/[^\d.]/g, ''));
  return { window: await mg('stock-window'), boxed: await mg('stock-boxed'), returned: await mg('stock-returned') };
}

/** Loads a box for `client` through the load form and hands it out (phone confirmed). */
async function loadAndHandOut(page, server, client, serial, start, days = '2') {
  await page.goto(`${server.url}/clients/${client}`);
  const form = page.locator('#load-form');
  await form.locator('input[name=serial]').fill(serial);
  await form.locator('input[name=days]').fill(days);
  await form.locator('input[name=start]').fill(start);
  await form.locator('input[name=code_hour]').fill('7');
  await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
  const written = page.locator('#box-written');
  assert.ok(await written.count(), `the box ${serial} is loaded: ${await text(page, 'main')}`);
  const provision = { load_id: Number(await written.getAttribute('data-load')), serial };
  await page.goto(`${server.url}/clients/${client}`);
  const row = page.locator(`#boxes tr[data-load="${provision.load_id}"]`);
  await row.locator('form[action$="/hand-out"] input[name=phone_confirmed]').check();
  await Promise.all([page.waitForNavigation(), row.locator('form[action$="/hand-out"] button').click()]);
  return provision;
}

/** Doses `uic` at the window (UIC, Enter, and Enter again if the page asks to confirm). */
async function doseAtWindow(page, server, uic) {
  await page.goto(`${server.url}/dispensing`);
  await page.fill('input[name=uic]', uic);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  if (await page.locator('#dose-confirm').count()) await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
}

function tail(server) {
  try {
    return fs.readFileSync(path.join(server.dir, 'server.log'), 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

function stopServer(server) {
  if (server && !server.exited) server.proc.kill('SIGTERM');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the browser

let browser;
async function theBrowser() {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

after(async () => {
  if (browser) await browser.close();
  for (const s of servers) stopServer(s);
  printTimings();
  for (const s of servers) {
    if (!s.db) continue;
    await new Promise((r) => (s.exited ? r() : s.proc.once('exit', r)));
    try {
      psql(`DROP DATABASE IF EXISTS ${s.db.name}`);
    } catch (e) {
      console.log(`# ${e.message}`);
    }
  }
});

// Page-load times: navigation start to the end of the load event, per language and page.
const timings = {};
function record(lang, name, ms) {
  timings[name] ??= {};
  (timings[name][lang] ??= []).push(ms);
}

function printTimings() {
  const names = Object.keys(timings);
  if (names.length === 0) return;
  const cell = (xs) => (xs ? `${Math.round(Math.max(...xs))}`.padStart(7) : '      –');
  const lines = ['', 'Page-load times (ms, navigation start → load event end; worst of the visits):'];
  lines.push(`${'page'.padEnd(22)}${LANGS.map((l) => l.padStart(8)).join('')}`);
  for (const n of names) lines.push(`${n.padEnd(22)}${LANGS.map((l) => ' ' + cell(timings[n][l])).join('')}`);
  console.log(lines.join('\n'));
  fs.writeFileSync(path.join(SHOTS, 'timings.json'), JSON.stringify(timings, null, 2));
}

/** Goes to `url`, waits for the load event and records the load time under `name`. */
async function visit(page, lang, name, url) {
  const resp = await page.goto(url, { waitUntil: 'load' });
  assert.ok(resp && resp.status() < 400, `${name}: ${url} answered ${resp && resp.status()}`);
  const ms = await page.evaluate(() => {
    const e = performance.getEntriesByType('navigation')[0];
    return e ? e.loadEventEnd - e.startTime : NaN;
  });
  record(lang, name, ms);
  return resp;
}

/** A fresh browser context (own cookies) logged in as `username`, speaking `lang`. */
async function login(server, username, lang, viewport = SIZES[0]) {
  const b = await theBrowser();
  const context = await b.newContext({ viewport, locale: lang === 'en' ? 'en-US' : 'zh-CN' });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  await visit(page, lang, 'login', `${server.url}/login`);
  // Keyboard only: the username field has the focus; Tab to the password; Enter logs in.
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'username');
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await Promise.all([page.waitForURL(`${server.url}/`), page.keyboard.press('Enter')]);
  if ((await page.getAttribute('html', 'lang')) !== lang) {
    // The account speaks the other language: the switch in the header changes it for good.
    await Promise.all([page.waitForNavigation(), page.click('#lang-switch')]);
  }
  assert.equal(await page.getAttribute('html', 'lang'), lang, `${username} sees the ${lang} interface`);
  return page;
}

const text = (page, sel = 'body') => page.locator(sel).first().innerText();
const hasCjk = (s) => /[\u4e00-\u9fff]/.test(s);

// ---------------------------------------------------------------- page checks

/** Problems of the page now shown: horizontal scrolling and fields without a label. */
async function pageProblems(page) {
  return page.evaluate(() => {
    const out = [];
    const se = document.scrollingElement;
    if (se.scrollWidth > window.innerWidth) {
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((e) => e.getBoundingClientRect().width > 0)
        .slice(0, 3)
        .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(' ').join('.') : ''));
      out.push(`scrolls horizontally: ${se.scrollWidth} > ${window.innerWidth} (${wide.join(', ')})`);
    }
    const visible = (e) => {
      const r = e.getBoundingClientRect();
      const s = getComputedStyle(e);
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
    };
    for (const e of document.querySelectorAll('input, select, textarea')) {
      if (e.type === 'hidden' || !visible(e)) continue;
      const labelled =
        (e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`)) ||
        e.closest('label') ||
        (e.getAttribute('aria-label') || '').trim() ||
        (e.getAttribute('aria-labelledby') || '').trim();
      if (!labelled) out.push(`field without a label: <${e.tagName.toLowerCase()} name="${e.name}">`);
    }
    return out;
  });
}

// What the untranslated-text check leaves out (see the report of issue 9 for each).
const RECORD_TEXT = [
  '#audit-trail td', // actions and reasons as the audit trail stored them
  '#access-trail td',
  '#ledger td', // the disclosure ledger: what was disclosed, as recorded
  '#consents td:nth-child(3)', // a consent's scope, as written with the client
  '#indicators td code', // indicator ids (codes shared with DHIS2 mappings), shown under the translated name
  '#dhis2-mapping code', // DHIS2 data element and category option ids, as the administrator typed them
  'pre.checkpoint', '#checkpoints-command', // a signed checkpoint's machine text, and the command that checks it
];

/** Text that looks untranslated in a Chinese page: raw message ids, and English UI words. */
async function untranslated(page) {
  const body = await page.evaluate((skip) => {
    // Records, not interface: stored texts shown as they were written (audit trail, disclosure
    // ledger, consent scopes) and the indicator definitions that come from the domain crate.
    for (const e of document.querySelectorAll(skip)) e.style.display = 'none';
    // Visible text plus the attributes a person reads (placeholders, labels, titles).
    const bits = [document.body.innerText, document.title];
    for (const e of document.querySelectorAll('[placeholder], [aria-label], [title], option')) {
      bits.push(e.getAttribute('placeholder') || '', e.getAttribute('aria-label') || '', e.getAttribute('title') || '');
    }
    for (const e of document.querySelectorAll('button, input[type=submit]')) bits.push(e.innerText || e.value || '');
    return bits.join('\n');
  }, RECORD_TEXT.join(', '));
  const found = [];
  // The server renders a missing message as ⟦id⟧ (i18n.rs).
  for (const m of body.matchAll(/⟦[^⟧]*⟧/g)) found.push(`missing message ${m[0]}`);
  // A raw Fluent id: lower-case words joined by hyphens (disp-status-done, th-title).
  for (const m of body.matchAll(/(?<![\w/.-])[a-z]+(?:-[a-z0-9_]+)+(?![\w/.-])/g)) found.push(`raw id? "${m[0]}"`);
  // English words: any Latin word of 3+ letters not on the list of names, codes and demo data.
  const allowed = new Set([
    // names and codes that stay as they are in Chinese
    'anxin', 'english', 'uic', 'psb', 'cdc', 'hiv', 'hcv', 'arv', 'art', 'nsp', 'vct', 'sms', 'csv', 'dhis', 'dhis2',
    'datavaluesets', 'box', 'yuxi', 'ping', 'centre', 'mmt', 'cit', 'gps', 'pdf',
    'jpeg', 'png', 'webp', // the image formats a client's photo may be in
    'tdf', 'azt', 'efv', 'nvp', 'lpv', 'dtg', // ARV abbreviations, written so in Chinese regimens (TDF+3TC+EFV)
    // data entered by people in the demo (agreement texts, reasons, lot numbers): not UI
    'methadone', 'maintenance', 'treatment', 'come', 'daily', 'other', 'drugs', 'random', 'urine', 'tests', 'stable',
    'induction', 'phone', 'confirmed', 'client', 'name', 'national', 'number', 'requested', 'days', 'criminal',
    'record', 'demo', 'police', 'check', 'identified', 'counts', 'overdose', 'prevention', 'driving', 'peer',
    'arrived', 'enrolled', 'referral', // the police referral's words in the disclosure ledger
    'admin', 'manager', 'doctor', 'doctor2', 'nurse', 'counsellor', 'e2e', 'default', // the policy version 'default-2026.1'
  ]);
  const words = new Set();
  for (const m of body.matchAll(/[A-Za-z][A-Za-z0-9]{2,}/g)) {
    const w = m[0].toLowerCase();
    if (!allowed.has(w) && !/^(yx|or|box|lot)\d*/i.test(w) && !/^[a-z]{0,3}\d/.test(w)) words.add(m[0]);
  }
  if (words.size && process.env.E2E_DEBUG) {
    const where = await page.evaluate((ws) => {
      const out = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (ws.some((w) => n.textContent.includes(w))) {
          const e = n.parentElement.closest('[id]');
          out.push(`${e ? e.tagName + '#' + e.id : '?'} <${n.parentElement.tagName.toLowerCase()}>: ${n.textContent.trim().slice(0, 80)}`);
        }
      }
      return [...new Set(out)].slice(0, 40);
    }, [...words]);
    console.log(where.join('\n'));
  }
  if (words.size) found.push(`English words: ${[...words].slice(0, 25).join(' ')}`);
  return found;
}

/** Collects the order in which Tab visits the visible fields and buttons inside `main`. */
async function tabOrder(page, presses = 12) {
  const seen = [];
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || !e.closest('main') || !e.matches('input, select, textarea, button, a')) return null;
      const r = e.getBoundingClientRect();
      return { key: e.getAttribute('name') || e.id || e.innerText.trim().slice(0, 20), top: Math.round(r.top + window.scrollY), left: Math.round(r.left) };
    });
    if (f && !seen.some((s) => s.key === f.key && s.top === f.top)) seen.push(f);
  }
  return seen;
}

function assertVisualOrder(order, what) {
  for (let i = 1; i < order.length; i++) {
    const a = order[i - 1];
    const b = order[i];
    // Next field is below, or on the same line to the right.
    const ok = b.top > a.top + 2 || (Math.abs(b.top - a.top) <= 2 && b.left >= a.left);
    assert.ok(ok, `${what}: Tab goes from ${a.key} (${a.left},${a.top}) back to ${b.key} (${b.left},${b.top})`);
  }
}

// ---------------------------------------------------------------- the box simulator

function boxSim(args) {
  const r = spawnSync(BIN, ['box-sim', ...args], { encoding: 'utf8' });
  return { code: r.status, out: (r.stdout || '') + (r.stderr || '') };
}

// ---------------------------------------------------------------- the day, per language

for (const lang of LANGS) {
  test(`a centre's day in ${lang}`, { timeout: 900_000 }, async (t) => {
    const server = await startServer(lang);
    t.diagnostic(`server ready in ${server.startMs} ms at ${server.url} (data in ${server.dir})`);
    const zh = lang === 'zh-CN';
    const s = {}; // what the steps hand on to each other
    const pages = {}; // logged-in pages by role
    const shots = []; // [role, name, url] of the main pages, for the usability checks

    try {
      await t.test('the dispenser logs in with the keyboard and sees the day list', async () => {
        const page = (pages.nurse = await login(server, 'nurse', lang));
        await visit(page, lang, 'dispensing', `${server.url}/dispensing`);
        shots.push(['nurse', 'dispensing', '/dispensing'], ['nurse', 'home', '/'], ['nurse', 'clients', '/clients'], ['nurse', 'stock', '/stock']);
        const h1 = await text(page, 'h1');
        assert.ok(h1.includes(TODAY), `the window names the day: ${h1}`);
        const rows = page.locator('#day-list tbody tr');
        assert.ok((await rows.count()) > 150, 'the day list holds the centre');
        s.give = await page.locator('#day-list tr.status-give').evaluateAll((rs) => rs.map((r) => r.dataset.uic));
        s.withheld = await page.locator('#day-list tr.status-withheld').evaluateAll((rs) => rs.map((r) => r.dataset.uic));
        assert.ok(s.give.length >= 3, 'clients to dose');
        assert.ok(s.withheld.length >= 1, 'a client withheld after missed days');
        const why = await text(page, `#day-list tr[data-uic="${s.withheld[0]}"]`);
        assert.match(why, /\d/, `the withheld row explains (missed days): ${why}`);
        if (zh) assert.ok(hasCjk(why.replace(s.withheld[0], '')), `the explanation is in Chinese: ${why}`);
      });

      await t.test('doses from the keyboard only: UIC, Enter', async () => {
        const page = pages.nurse;
        for (const uic of s.give.slice(0, 2)) {
          const input = await page.evaluate(() => document.activeElement?.getAttribute('name'));
          assert.equal(input, 'uic', 'the UIC field has the focus, ready for the next client');
          await page.keyboard.type(uic);
          let keys = 0;
          const press = async (k) => {
            keys += 1;
            await page.keyboard.press(k);
          };
          await Promise.all([page.waitForNavigation(), press('Enter')]);
          // A confirmation step, if the page asks for one, is one more key.
          if (await page.locator('#dose-confirm').count()) await Promise.all([page.waitForNavigation(), press('Enter')]);
          assert.ok(keys <= 3, `a dose took ${keys} keystrokes after the UIC`);
          const ok = await text(page, '.flash.ok');
          assert.ok(ok.includes(uic) && /\d+ ?(mg|毫克)/.test(ok), `the dose is confirmed with its amount: ${ok}`);
          if (zh) assert.ok(hasCjk(ok));
          assert.ok(await page.locator(`#day-list tr.status-done[data-uic="${uic}"]`).count(), 'the row shows dosed');
          t.diagnostic(`dose for ${uic}: ${keys} keystroke(s) after the UIC`);
        }
        s.dosed = s.give[0];
      });

      await t.test('a second dose the same day is refused, with the time of the first', async () => {
        const page = pages.nurse;
        await page.keyboard.type(s.dosed);
        await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        const err = await text(page, '.flash.error');
        assert.ok(err.includes(s.dosed) && /\d\d:\d\d/.test(err), `refusal names the client and the time: ${err}`);
        if (zh) assert.ok(hasCjk(err), `the refusal is in Chinese: ${err}`);
        assert.equal(await page.getAttribute('.flash.error', 'role'), 'alert');
        await page.screenshot({ path: path.join(SHOTS, `${lang}-dispensing-refused.png`) });
      });

      await t.test('a dose after missed days is withheld, with the reason', async () => {
        const page = pages.nurse;
        const uic = s.withheld[0];
        await page.keyboard.type(uic);
        await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        const err = await text(page, '.flash.error');
        assert.ok(err.includes(uic) && /\d/.test(err.replace(uic, '')), `withheld, missed days named: ${err}`);
        if (zh) assert.ok(hasCjk(err), `the explanation is in Chinese: ${err}`);
        assert.equal(await page.locator(`#day-list tr.status-withheld[data-uic="${uic}"]`).count(), 1);
      });

      await t.test('a split dose: the second portion waits for its interval, and the window says until when', async () => {
        const page = pages.nurse;
        await page.goto(`${server.url}/dispensing`);
        const row = page.locator('#day-list tr.status-give', { hasText: '0/2' }).first();
        assert.equal(await row.count(), 1, 'the demo has a client on a split dose');
        const uic = await row.getAttribute('data-uic');
        await page.fill('input[name=uic]', uic);
        await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        if (await page.locator('#dose-confirm').count()) await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        const ok = await text(page, '.flash.ok');
        assert.ok(ok.includes(uic) && /1\/2|1 of 2/.test(ok) && ok.includes('14:30'), `portion 1 given, the next due at 14:30: ${ok}`);
        await page.fill('input[name=uic]', uic);
        await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        const err = await text(page, '.flash.error');
        assert.ok(err.includes(uic) && /2\/2|2 of 2/.test(err) && err.includes('14:30'), `portion 2 refused until 14:30: ${err}`);
        if (zh) assert.ok(hasCjk(err), `in Chinese: ${err}`);
        assert.ok((await text(page, `#day-list tr[data-uic="${uic}"]`)).includes('1/2'), 'the row shows one portion of two');
      });

      await t.test('the counsellor takes in a new client with the intake wizard: identity, stage and order, agreement, consents', async () => {
        const page = (pages.counsellor = await login(server, 'counsellor', lang));
        await visit(page, lang, 'clients', `${server.url}/clients`);
        await Promise.all([page.waitForNavigation(), page.click('#nav-intake')]);
        shots.push(['counsellor', 'intake', '/intake']);
        const uic = zh ? 'YX-7001-ZH' : 'YX-7002-EN';
        const name = zh ? '周强磊' : 'Zhou Qianglei';
        const form = page.locator('#intake-form');
        await form.locator('input[name=uic]').fill(uic.toLowerCase());
        await form.locator('input[name=name]').fill(name);
        await form.locator('input[name=phone]').fill(zh ? '139 1234 5601' : '139 1234 5602');
        await form.locator('select[name=sex]').selectOption('male');
        await form.locator('input[name=birth_year]').fill('2020');
        await form.locator('select[name=stage]').selectOption('community_treatment');
        await form.locator('input[name=order_start]').fill('2026-10-01');
        // A year too recent (a client of six) is refused at its field, in the page's language, the rest kept.
        await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
        const err = await text(page, '#intake-form .field-error[data-field=birth_year]');
        assert.ok(zh ? /出生年份/.test(err) : /year of birth/.test(err), `the refusal at the field, in ${lang}: ${err}`);
        assert.equal(await page.inputValue('#intake-form input[name=name]'), name, 'what was typed is kept');
        assert.equal(await page.inputValue('#intake-form select[name=stage]'), 'community_treatment');
        await page.fill('#intake-form input[name=birth_year]', '1988');
        await Promise.all([page.waitForNavigation(), page.click('#intake-form button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).includes(uic), 'the record is made, the UIC in capitals');
        s.newClient = Number(page.url().match(/clients\/(\d+)\/intake/)[1]);
        shots.push(['counsellor', 'intake-agreement', `/clients/${s.newClient}/intake/agreement`]);
        // Step 2: signed by a guardian without the guardian's name: refused at that field, the rest kept.
        const agreement = page.locator('#agreement-form');
        assert.equal(await page.locator('#agreements li[data-agreement-version]').count(), 0, 'no agreement yet');
        await agreement.locator('input[name=duration_months]').fill('24');
        await agreement.locator('select[name=signed_by]').selectOption('guardian');
        await Promise.all([page.waitForNavigation(), agreement.locator('button[type=submit]').click()]);
        const gerr = await text(page, '#agreement-form .field-error[data-field=guardian_name]');
        assert.ok(zh ? /监护人姓名/.test(gerr) : /guardian's name/.test(gerr), `the refusal at the field, in ${lang}: ${gerr}`);
        assert.equal(await page.locator('#agreement-form input[name=duration_months]').inputValue(), '24', 'what was typed is kept');
        await page.fill('#agreement-form input[name=guardian_name]', zh ? '周桂兰' : 'Zhou Guilan');
        await Promise.all([page.waitForNavigation(), page.click('#agreement-form button[type=submit]')]);
        // Step 3: the consents, one by one.
        assert.ok(page.url().endsWith('/intake/consents'), `on to the consents: ${page.url()}`);
        shots.push(['counsellor', 'intake-consents', `/clients/${s.newClient}/intake/consents`]);
        for (const kind of ['police', 'cdc']) {
          await page.selectOption('#consent-form select[name=kind]', kind);
          await Promise.all([page.waitForNavigation(), page.click('#consent-form button[type=submit]')]);
          assert.ok((await text(page, '.flash.ok')).length > 0, `consent ${kind} recorded`);
        }
        assert.equal(await page.locator('#intake-consents li').count(), 2, 'both consents listed');
        await Promise.all([page.waitForNavigation(), page.click('#intake-done')]);
        assert.ok((await text(page, 'h1')).includes(uic), 'the new record opens');
        assert.equal(await page.locator('#agreements li[data-agreement-version="1"]').count(), 1, 'version 1 is listed');
        for (const c of ['agreement_signed', 'police_consent']) {
          assert.equal(await page.getAttribute(`#criteria tr[data-criterion="${c}"]`, 'class'), 'pass', `eligibility now counts ${c}`);
        }
        assert.equal(await page.getAttribute('#criteria tr[data-criterion="days_in_treatment"]', 'class'), 'fail', 'only the history is missing');
        const term = await text(page, '#order-term');
        assert.ok(term.includes('2026-10-01') && term.includes('2029-10-01'), `the order runs three years: ${term}`);
        assert.equal(await page.inputValue('#demographics-form input[name=birth_year]'), '1988');
      });

      await t.test("the doctor starts the new client: 100 mg on day 1 refused at the field, titration steps, a rise beyond the limits confirmed by a second prescriber", async () => {
        const page = await login(server, 'doctor', lang);
        const record = `${server.url}/clients/${s.newClient}`;
        await visit(page, lang, 'client', record);
        const form = page.locator('#order-form');
        assert.ok((await text(page, '#order-limits')).includes('30'), 'the form says the induction limits');
        await form.locator('select[name=kind]').selectOption('induction');
        await form.locator('input[name=start]').fill(TODAY);
        await form.locator('input[name=mg]').fill('100');
        await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
        const err = await text(page, '#order-form .field-error[data-field=mg]');
        assert.ok(zh ? /超过诱导期上限 30 mg/.test(err) : /above the induction limit of 30 mg/.test(err), `100 mg refused at the dose, in ${lang}: ${err}`);
        assert.equal(await page.inputValue('#order-form input[name=mg]'), '100', 'what was typed is kept');
        assert.equal(await page.locator('#orders tbody tr').count(), 0, 'nothing written');
        // 30 mg, then 40 mg from day 4 and 50 mg from day 7: the titration steps in the form.
        const day = (n) => new Date(Date.parse(`${TODAY}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
        await page.fill('#order-form input[name=mg]', '30');
        await page.fill('#order-form input[name="steps[0].from"]', day(3));
        await page.fill('#order-form input[name="steps[0].mg"]', '40');
        await page.fill('#order-form input[name="steps[1].from"]', day(6));
        await page.fill('#order-form input[name="steps[1].mg"]', '50');
        await Promise.all([page.waitForNavigation(), page.click('#order-form button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).length > 0, 'the induction order is written');
        const first = await text(page, '#orders tbody tr[data-confirmation="not_needed"]');
        assert.ok(first.includes('30') && first.includes('40') && first.includes('50') && first.includes(day(6)), `the steps are on record: ${first}`);
        // 80 mg from day 8 (30 mg at once) with a reason: kept, but not in force until a second prescriber confirms.
        await page.selectOption('#order-form select[name=kind]', 'titration');
        await page.fill('#order-form input[name=start]', day(7));
        await page.fill('#order-form input[name=mg]', '80');
        await page.fill('#order-form input[name=reason]', zh ? '仍每日注射海洛因，渴求强烈' : 'still injecting daily, strong craving');
        await Promise.all([page.waitForNavigation(), page.click('#order-form button[type=submit]')]);
        assert.ok(zh ? /第二位医生/.test(await text(page, '.flash.ok')) : /second prescriber/.test(await text(page, '.flash.ok')));
        const waiting = page.locator('#orders tbody tr[data-confirmation="awaiting"]');
        assert.equal(await waiting.count(), 1, 'the rise waits');
        assert.equal(await waiting.locator('button').count(), 0, 'the writer cannot confirm it');
        await page.screenshot({ path: path.join(SHOTS, `${lang}-order-awaiting.png`), fullPage: true });
        await page.context().close();
        const second = await login(server, 'doctor2', lang);
        await visit(second, lang, 'client', record);
        const row = second.locator('#orders tbody tr[data-confirmation="awaiting"]');
        assert.ok(zh ? /50 mg 加到 80 mg/.test(await row.innerText()) : /from 50 mg to 80 mg/.test(await row.innerText()), 'the limit it goes beyond is named');
        await Promise.all([second.waitForNavigation(), row.locator('button[type=submit]').click()]);
        assert.ok((await text(second, '.flash.ok')).length > 0, 'confirmed');
        assert.equal(await second.locator('#orders tbody tr[data-confirmation="confirmed"]').count(), 1, 'in force now');
        await second.context().close();
      });

      await t.test('the window finds the new client by name and by phone', async () => {
        const uic = zh ? 'YX-7001-ZH' : 'YX-7002-EN';
        const name = zh ? '周强磊' : 'Zhou Qianglei';
        const nurse = pages.nurse;
        for (const q of [zh ? name : name.toLowerCase(), zh ? '13912345601' : '+86 139-1234-5602']) {
          await nurse.goto(`${server.url}/dispensing`);
          await nurse.fill('input[name=uic]', q);
          await Promise.all([nurse.waitForNavigation(), nurse.keyboard.press('Enter')]);
          const who = await text(nurse, '#window-candidates');
          assert.ok(who.includes(uic) && who.includes(name), `"${q}" finds the client with the name on record: ${who}`);
        }
        await nurse.goto(`${server.url}/dispensing`);
      });

      await t.test("the nurse takes the client's photo and the window shows it beside the dose", async () => {
        const uic = zh ? 'YX-7001-ZH' : 'YX-7002-EN';
        const nurse = pages.nurse;
        // A real 1×1 PNG, chosen as a file (the camera puts its JPEG into the same field).
        const file = path.join(os.tmpdir(), `anxin-e2e-photo-${lang}-${process.pid}.png`);
        fs.writeFileSync(
          file,
          Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64'),
        );
        await nurse.goto(`${server.url}/clients/${s.newClient}`);
        assert.equal(await nurse.locator('#photo img.client-photo').count(), 0, 'no photo yet');
        await nurse.setInputFiles('#photo-form input[type=file][name=photo]', file);
        await Promise.all([nurse.waitForNavigation(), nurse.click('#photo-submit')]);
        fs.rmSync(file, { force: true });
        const saved = await text(nurse, '.flash.ok');
        if (zh) assert.ok(hasCjk(saved), `the confirmation is in Chinese: ${saved}`);
        assert.ok(await nurse.locator('#photo img.client-photo').isVisible(), 'the record shows the photo');
        // At the window: the UIC (as a scanner types it), Enter; the client's photo beside the answer.
        await nurse.goto(`${server.url}/dispensing`);
        assert.equal(await nurse.evaluate(() => document.activeElement?.getAttribute('name')), 'uic', 'a scan goes to the UIC field');
        await nurse.keyboard.type(uic);
        await Promise.all([nurse.waitForNavigation(), nurse.keyboard.press('Enter')]);
        const answer = await text(nurse, '.window-confirm .flash');
        assert.ok(answer.includes(uic), `the window names the client: ${answer}`);
        const photo = nurse.locator(`#window-client[data-uic="${uic}"] img.client-photo`);
        assert.ok(await photo.isVisible(), 'the photo is beside the dose');
        await photo.evaluate((img) => (img.complete ? null : new Promise((r) => img.addEventListener('load', r, { once: true }))));
        assert.ok((await photo.evaluate((img) => img.naturalWidth)) > 0, 'the photo loaded');
        assert.ok((await photo.getAttribute('alt')).includes(uic), 'the photo has its alt text');
        await nurse.screenshot({ path: path.join(SHOTS, `${lang}-dispensing-photo.png`) });
        // The card: the UIC as a barcode a scanner reads back into the window's field.
        await nurse.goto(`${server.url}/clients/${s.newClient}/card`);
        assert.equal(await nurse.locator('#id-card svg.barcode rect.bar').count() > 20, true, 'the barcode is drawn');
        assert.equal(await text(nurse, '#card-uic'), uic);
        await nurse.screenshot({ path: path.join(SHOTS, `${lang}-client-card.png`) });
        await nurse.goto(`${server.url}/dispensing`);
      });

      await t.test('the doctor records the intake assessment; efavirenz on record warns on the order page', async () => {
        const page = await login(server, 'doctor', lang);
        await visit(page, lang, 'client', `${server.url}/clients/${s.newClient}`);
        const form = page.locator('#assessment-form');
        assert.equal(await page.locator('#interaction-warnings').count(), 0, 'no warning without an assessment');
        // Heroin, injecting, HIV positive on efavirenz; first an age at first use of 2.
        await form.locator('input[name=substance_heroin]').check();
        await form.locator('select[name=main_route]').selectOption('injecting');
        await form.locator('input[name=age_first_use]').fill('2');
        await form.locator('select[name=hiv]').selectOption('positive');
        await form.locator('input[name=medicine_efavirenz]').check();
        await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
        const err = await text(page, '#assessment-form .field-error[data-field=age_first_use]');
        assert.ok(zh ? /首次使用年龄 2 岁不合理/.test(err) : /age at first use of 2 is not plausible/.test(err), `the refusal at the field, in ${lang}: ${err}`);
        assert.equal(await page.inputValue('#assessment-form input[name=age_first_use]'), '2', 'what was typed is kept');
        assert.ok(await page.isChecked('#assessment-form input[name=substance_heroin]'), 'the substance is kept');
        assert.ok(await page.isChecked('#assessment-form input[name=medicine_efavirenz]'), 'the medicine is kept');
        assert.equal(await page.inputValue('#assessment-form select[name=main_route]'), 'injecting');
        assert.equal(await page.inputValue('#assessment-form select[name=hiv]'), 'positive');
        assert.equal(await page.locator('#assessment-current').count(), 0, 'nothing written');
        await page.fill('#assessment-form input[name=age_first_use]', '19');
        await Promise.all([page.waitForNavigation(), page.click('#assessment-form button[type=submit]')]);
        const saved = await text(page, '.flash.ok');
        if (zh) assert.ok(hasCjk(saved), `the confirmation is in Chinese: ${saved}`);
        const current = await text(page, '#assessment-current');
        assert.ok(zh ? /海洛因/.test(current) && /注射/.test(current) && /依非韦伦/.test(current) : /Heroin/.test(current) && /Injecting/.test(current) && /Efavirenz/.test(current), `the assessment shows: ${current}`);
        const warning = page.locator('#orders #interaction-warnings li[data-drug=efavirenz]');
        assert.ok(await warning.isVisible(), 'efavirenz warns beside the order form');
        const said = await warning.innerText();
        assert.ok(zh ? /依非韦伦.*降低美沙酮/.test(said) && /戒断/.test(said) : /Efavirenz.*lowers methadone/.test(said) && /withdrawal/.test(said), `the warning in ${lang}: ${said}`);
        await page.screenshot({ path: path.join(SHOTS, `${lang}-assessment-warning.png`), fullPage: true });
        await page.context().close();
      });

      await t.test("a counsellor's and a peer educator's day: services recorded in the page, refusals at the field", async () => {
        const page = pages.counsellor;
        const uic = zh ? 'YX-7001-ZH' : 'YX-7002-EN';
        await Promise.all([page.waitForNavigation(), page.click('#nav-services')]);
        // Needle exchange for the client just enrolled, typed in lower case; too many back first.
        await page.fill('#service-form input[name=uic]', uic.toLowerCase());
        await page.fill('#service-form input[name=given]', '20');
        await page.fill('#service-form input[name=returned]', '300');
        await Promise.all([page.waitForNavigation(), page.click('#service-form button[type=submit]')]);
        const err = await text(page, '#service-form .field-error[data-field=returned]');
        assert.ok(zh ? /回收 300 支/.test(err) : /300 needles returned/.test(err), err);
        assert.equal(await page.inputValue('#service-form input[name=given]'), '20', 'typed values kept');
        await page.fill('#service-form input[name=returned]', '18');
        await Promise.all([page.waitForNavigation(), page.click('#service-form button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).includes(uic));
        assert.ok((await text(page, '#recent-services')).includes(uic), 'listed by UIC');
        // An HIV test with counselling and its result told.
        await Promise.all([page.waitForNavigation(), page.click('a[href="/services/hiv_test"]')]);
        await page.fill('#service-form input[name=uic]', uic);
        await page.selectOption('#service-form select[name=result]', 'negative');
        for (const f of ['pre_counselled', 'post_counselled', 'told_result']) await page.check(`#service-form input[name=${f}]`);
        await Promise.all([page.waitForNavigation(), page.click('#service-form button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).includes(uic));
        shots.push(['counsellor', 'services', '/services/hiv_test']);
        // The peer educator: naloxone for an outreach contact known only by the code they give.
        const peer = (pages.peer = await login(server, 'peer', lang));
        await Promise.all([peer.waitForNavigation(), peer.click('#nav-services')]);
        await Promise.all([peer.waitForNavigation(), peer.click('a[href="/services/naloxone"]')]);
        const contact = zh ? 'KM-7101-ZH' : 'KM-7102-EN';
        await peer.fill('#service-form input[name=uic]', contact);
        await peer.check('#service-form input[name=outreach]');
        await peer.selectOption('#service-form select[name=sex]', 'female');
        await peer.fill('#service-form input[name=birth_year]', '1992');
        await peer.fill('#service-form input[name=kits]', '2');
        await Promise.all([peer.waitForNavigation(), peer.click('#service-form button[type=submit]')]);
        const recent = await text(peer, '#recent-services');
        assert.ok(recent.includes(contact) && (zh ? /外展/.test(recent) : /outreach/.test(recent)), recent);
        // From the list to the client's record: the UIC and services, nothing clinical.
        await Promise.all([peer.waitForNavigation(), peer.click(`#recent-services a:text("${uic}")`)]);
        assert.equal(await peer.locator('#orders, #urine, #access-trail, #ledger').count(), 0, 'no clinical record for a peer educator');
        shots.push(['peer', 'services', '/services/naloxone']);
      });

      await t.test('the counsellor admits the client to the therapeutic community and records the exit, refusals at the field', async () => {
        const page = pages.counsellor;
        const uic = zh ? 'YX-7001-ZH' : 'YX-7002-EN';
        await Promise.all([page.waitForNavigation(), page.click('#nav-tc')]);
        await page.fill('#tc-open input[name=uic]', uic.toLowerCase());
        await page.selectOption('#tc-open select[name=phase]', 'entry');
        await Promise.all([page.waitForNavigation(), page.click('#tc-open button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).includes(uic));
        const row = page.locator(`#tc-episodes tr[data-uic="${uic}"]`);
        assert.match(await row.locator('td.tc-state').innerText(), zh ? /入门期/ : /Entry/);
        // A leaving day without how it ended: refused at that field, the day kept.
        await row.locator('select[name=phase]').selectOption('primary');
        await row.locator('input[name=left_on]').fill(TODAY);
        await Promise.all([page.waitForNavigation(), row.locator('button[type=submit]').click()]);
        const err = await row.locator('.field-error[data-field=exit]').innerText();
        assert.ok(zh ? /完成还是中途退出/.test(err) : /completed or dropped out/.test(err), err);
        assert.equal(await row.locator('input[name=left_on]').inputValue(), TODAY, 'the day typed is kept');
        await row.locator('select[name=exit]').selectOption('dropped_out');
        await Promise.all([page.waitForNavigation(), row.locator('button[type=submit]').click()]);
        assert.match(await row.locator('td.tc-state').innerText(), zh ? /主要治疗期 · 中途退出/ : /Primary treatment · dropped out/);
        shots.push(['counsellor', 'therapeutic community', '/tc']);
      });

      await t.test('the prescriber checks take-home eligibility and asks the police', async () => {
        const page = (pages.doctor = await login(server, 'doctor', lang));
        // A client with the history for take-home whose agreement and consent are still on
        // paper: the only criteria failing are those two.
        const failing = async () => page.locator('#criteria tr.fail[data-criterion]').evaluateAll((rs) => rs.map((r) => r.dataset.criterion).sort().join(' '));
        for (let id = 250; id > 150 && !s.client; id--) {
          await page.goto(`${server.url}/clients/${id}`);
          if ((await failing()) === 'agreement_signed police_consent') s.client = id;
        }
        assert.ok(s.client, 'a client whose papers are not recorded yet');
        await visit(page, lang, 'client', `${server.url}/clients/${s.client}`);
        assert.equal(await page.locator('#psb-request-form').count(), 0, 'no police request before the papers');
        await page.fill('#agreement-form input[name=duration_months]', '36');
        await Promise.all([page.waitForNavigation(), page.click('#agreement-form button[type=submit]')]);
        await page.selectOption('#consent-form select[name=kind]', 'police');
        await Promise.all([page.waitForNavigation(), page.click('#consent-form button[type=submit]')]);
        assert.equal(await failing(), '', 'every criterion passes once the papers are recorded');
        shots.push(['doctor', 'client', `/clients/${s.client}`]);
        const criteria = page.locator('#takehome tr[data-criterion]');
        assert.ok((await criteria.count()) >= 3, 'the criteria are shown');
        const first = await criteria.first().innerText();
        assert.ok(/✓|✗/.test(first), `each criterion shows value, threshold and pass: ${first}`);
        s.uic = (await text(page, 'h1')).match(/YX-\d{4}-[A-Z]{2}/)[0];
        await Promise.all([page.waitForNavigation(), page.click('#psb-request-form button[type=submit]')]);
        const ledger = await text(page, '#ledger');
        assert.ok(/PSB/.test(ledger), `the disclosure ledger records the request: ${ledger}`);
      });

      await t.test('the police officer sees only the request fields and approves', async () => {
        const page = (pages.police = await login(server, 'police', lang));
        await visit(page, lang, 'psb', `${server.url}/psb`);
        shots.push(['police', 'psb', '/psb'], ['police', 'home', '/']);
        const all = await text(page, 'main');
        assert.ok(!/(?<!\d)1[3-9]\d{9}(?!\d)/.test(all), 'no phone number');
        assert.ok(!/\bmg\b|毫克/.test(all), 'no dose');
        assert.ok(!/YX-\d{4}-[A-Z]{2}/.test(all), 'no UIC (no link to the clinical record)');
        assert.ok(!/尿检|urine|methadone|美沙酮|HIV/i.test(all), 'no clinical data');
        assert.equal(await page.locator('main a[href^="/clients"]').count(), 0, 'no way into client records');
        const headers = await page.locator('#psb-queue thead th').allInnerTexts();
        assert.equal(headers.filter((h) => h.trim()).length, 6, `request fields only: ${headers.join(' | ')}`);
        const nav = await page.locator('header nav a').count();
        assert.ok(nav <= 5, 'the police see only their queue, their referrals, the policy room and the shared figures');
        // Our request is the newest one.
        const ids = await page.locator('#psb-queue tr[data-request]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.request)));
        s.request = Math.max(...ids);
        const row = page.locator(`#psb-queue tr[data-request="${s.request}"]`);
        await row.locator('input[name=reason]').fill(zh ? '无犯罪记录' : 'no criminal record');
        await Promise.all([page.waitForNavigation(), row.locator('button[value=approve]').click()]);
        const status = await text(page, `#psb-queue tr[data-request="${s.request}"]`);
        assert.ok(status.includes(zh ? '已批准' : 'approved'), `approved: ${status}`);
        // The programme's shared figures (referral to treatment, MMT adherence), nothing clinical.
        await Promise.all([page.waitForNavigation(), page.click('#nav-indicators')]);
        assert.equal(await page.locator('#ind-mmt_clients').count(), 1, 'clients in MMT');
        assert.equal(await page.locator('#ind-referrals_police').count(), 1, 'referrals from the police');
        for (const id of ['hiv_tests', 'hiv_positivity', 'urine_negative_rate', 'overdoses', 'deaths']) {
          assert.equal(await page.locator(`#ind-${id}`).count(), 0, `${id} is not the police's`);
        }
        assert.equal(await page.locator('#dhis2-link').count(), 0, 'DHIS2 is the health system\'s');
        shots.push(['police', 'shared figures', '/indicators']);
      });

      await t.test('a police referral: the officer prints a code, the centre marks it arrived (with agreement) and enrolled, the officer reads the two words and the figures', async () => {
        const police = pages.police;
        await Promise.all([police.waitForNavigation(), police.click('#nav-psb-referrals')]);
        await Promise.all([police.waitForNavigation(), police.click('#referral-issue button[type=submit]')]);
        const code = (await text(police, '#referral-code')).trim();
        assert.match(code, /^[2-9A-Z]{4}-[2-9A-Z]{4}$/, `the slip carries a code: ${code}`);
        const slip = await text(police, '#referral-slip');
        assert.ok(!/YX-\d{4}/.test(slip), 'nothing about the person on the slip');
        shots.push(['police', 'psb referrals', '/psb/referrals']);
        // At the centre: without the person's agreement, refused at the field, the code kept.
        const centre = pages.counsellor;
        await centre.goto(`${server.url}/`);
        await Promise.all([centre.waitForNavigation(), centre.click('#nav-police-referrals')]);
        shots.push(['counsellor', 'police referrals', '/police-referrals']);
        await centre.fill('#referral-code-input', code.toLowerCase());
        await Promise.all([centre.waitForNavigation(), centre.click('#referral-form button[type=submit]')]);
        const err = await text(centre, '#referral-form .field-error[data-field=consent]');
        assert.ok(zh ? /须本人同意/.test(err) : /only if the person agrees/.test(err), `refused at the agreement, in ${lang}: ${err}`);
        assert.equal(await centre.inputValue('#referral-code-input'), code.toLowerCase(), 'the code typed is kept');
        await centre.check('#referral-form input[name=consent]');
        await Promise.all([centre.waitForNavigation(), centre.click('#referral-form button[type=submit]')]);
        assert.ok((await text(centre, '.flash.ok')).length > 0, 'arrived');
        const row = centre.locator('#referrals-waiting tr[data-referral]').last();
        await row.locator('input[name=uic]').fill(zh ? 'YX-7001-ZH' : 'YX-7002-EN');
        await Promise.all([centre.waitForNavigation(), row.locator('button[type=submit]').click()]);
        assert.ok((await text(centre, '.flash.ok')).length > 0, 'enrolled');
        // The receipt of voluntary registration the centre prints for the client.
        await centre.goto(`${server.url}/clients/${s.newClient}`);
        await Promise.all([centre.waitForNavigation(), centre.click('#client-receipt')]);
        const receipt = await text(centre, '#receipt');
        assert.ok(receipt.includes(zh ? 'YX-7001-ZH' : 'YX-7002-EN') && (zh ? /第六十二条/.test(receipt) : /article 62/.test(receipt)), `the receipt names the client and the law: ${receipt}`);
        assert.ok(!/\bmg\b|毫克|methadone|美沙酮/i.test(receipt), 'nothing clinical on the receipt');
        // The officer reads the words and the figures; no UIC, no record.
        await police.goto(`${server.url}/psb/referrals`);
        const mine = police.locator('#station-referrals tr[data-state="enrolled"]');
        assert.equal(await mine.count(), 1, 'the referral reads enrolled');
        assert.ok((await mine.innerText()).includes(zh ? '已入组' : 'enrolled'));
        assert.equal(await text(police, '#station-figures dd[data-figure="enrolled"]'), '1');
        assert.match(await text(police, '#station-figures dd[data-figure="boxes_at_home"]'), zh ? /\d|人数过少/ : /\d|too few/, 'the share of boxes at home, or suppressed');
        const all = await text(police, 'main');
        assert.ok(!/YX-\d{4}-[A-Z]{2}/.test(all) && !/毫克|\bmg\b/.test(all), `nothing about the person: ${all}`);
        assert.equal(await police.locator('main a[href^="/clients"]').count(), 0, 'no way into client records');
      });

      await t.test('boxes are registered in the page; a serial given twice is refused at the field', async () => {
        const page = pages.doctor;
        await visit(page, lang, 'boxes', `${server.url}/boxes`);
        shots.push(['doctor', 'boxes', '/boxes']);
        for (const serial of ['BOX-0101', 'BOX-0102', 'BOX-0101']) {
          await page.fill('#box-form input[name=serial]', serial);
          await Promise.all([page.waitForNavigation(), page.click('#box-form button[type=submit]')]);
        }
        const err = await text(page, '#box-form .field-error[data-field=serial]');
        assert.ok(err.includes('BOX-0101') && (zh ? hasCjk(err) : !hasCjk(err)), `refused in ${lang}: ${err}`);
        assert.equal(await page.inputValue('#box-form input[name=serial]'), 'BOX-0101', 'what was typed is kept');
        assert.equal(await page.locator('#box-registry tr[data-state=in_clinic][data-serial^="BOX-010"]').count(), 2);
      });

      await t.test('a box is loaded and the hand-out sheet printed', async () => {
        const page = pages.doctor;
        s.stock0 = await stockLines(pages.nurse, server);
        await page.goto(`${server.url}/clients/${s.client}`);
        assert.ok(await page.locator('#approval').count(), 'the approval shows on the record');
        const form = page.locator('#load-form');
        await form.locator('input[name=serial]').fill('BOX-0009');
        await form.locator('input[name=days]').fill('2');
        await form.locator('input[name=start]').fill(TODAY);
        await form.locator('input[name=code_hour]').fill('7');
        await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
        const flashErr = await page.locator('.flash.error').count();
        assert.equal(flashErr, 0, flashErr ? await text(page, '.flash.error') : '');
        // The box station wrote the box: each step is shown, and which dose goes where;
        // the secret never appears (nor anything like it).
        const written = page.locator('#box-written');
        assert.ok(await written.count(), 'the box station wrote the box');
        assert.equal(await written.getAttribute('data-serial'), 'BOX-0009');
        assert.equal(await page.locator('#station-steps li.done').count(), 3, 'identified, written, read back');
        const steps = await text(page, '#station-steps');
        assert.ok(steps.includes('BOX-0009') && (zh ? hasCjk(steps) : !hasCjk(steps)), `the steps in ${lang}: ${steps}`);
        assert.equal(await page.locator('#fill tbody tr').count(), 2, 'one line per compartment');
        // (Hidden form tokens are hex too: the check reads what the page shows and every
        // field it could hand on, except those tokens.)
        const shown = await text(page, 'main');
        const fields = await page.locator('main input:not([name=csrf]):not([name=once]), main textarea').evaluateAll((es) => es.map((e) => e.value).join(' '));
        assert.ok(!/[0-9a-f]{32,}/i.test(`${shown} ${fields}`) && !/base64/i.test(shown), 'no secret or base64 on the page');
        assert.equal(await page.locator('code.secret, textarea').count(), 0, 'nothing to copy into a box');
        await page.screenshot({ path: path.join(SHOTS, `${lang}-box-loaded-1366x768.png`) });
        s.load = Number(await written.getAttribute('data-load'));
        await visit(page, lang, 'hand-out sheet', `${server.url}/loads/${s.load}/sheet`);
        shots.push(['doctor', 'hand-out sheet', `/loads/${s.load}/sheet`], ['doctor', 'outbox', '/outbox']);
        const sheet = await text(page, '#hand-out-sheet');
        assert.ok(sheet.includes(s.uic) && sheet.includes('BOX-0009'), 'the sheet names client and box');
        assert.equal(await page.locator('#hand-out-sheet tbody tr').count(), 2, 'one line per compartment');
        s.mg = (await page.locator('#hand-out-sheet tbody tr td:nth-child(3)').allInnerTexts()).map((m) => Number(m.replace(/[^\d.]/g, '')));
        // Stock: the box's doses left it once, at loading.
        const st = await stockLines(pages.nurse, server);
        assert.equal(st.boxed - s.stock0.boxed, s.mg[0] + s.mg[1], `the box's ${s.mg.join(' + ')} mg left the stock`);
        await page.emulateMedia({ media: 'print' });
        for (const sel of ['header.top', '#hand-out-sheet button']) {
          assert.equal(await page.locator(sel).first().isVisible(), false, `${sel} is not printed`);
        }
        assert.ok(await page.locator('#hand-out-sheet table').isVisible());
        await page.pdf({ path: path.join(SHOTS, `${lang}-hand-out-sheet.pdf`), format: 'A4' });
        await page.screenshot({ path: path.join(SHOTS, `${lang}-hand-out-sheet-print.png`), fullPage: true });
        await page.emulateMedia({ media: 'screen' });
        // Hand the box out (phone number confirmed).
        await page.goto(`${server.url}/clients/${s.client}`);
        const row = page.locator(`#boxes tr[data-load="${s.load}"]`);
        // The phone for the codes must be confirmed with the client first.
        await row.locator('form[action$="/hand-out"] input[name=phone_confirmed]').check();
        await Promise.all([page.waitForNavigation(), row.locator('form[action$="/hand-out"] button').click()]);
        assert.match(await text(page, `#boxes tr[data-load="${s.load}"]`), zh ? /在服务对象处/ : /with the client/);
      });

      await t.test("the outbox shows the day's code sent", async () => {
        const page = pages.doctor;
        // Today's code of the new load, due at the code hour, goes out at once (it is 08:30).
        let row = '';
        for (let i = 0; i < 40; i++) {
          await visit(page, lang, 'outbox', `${server.url}/outbox`);
          const rows = await page.locator('table.outbox tbody tr').evaluateAll((rs) =>
            rs.map((r) => ({ state: r.dataset.state, text: r.innerText })),
          );
          const today = rows.filter((r) => r.text.includes(`${TODAY} 07:00`));
          row = today.find((r) => ['sent', 'delivered'].includes(r.state));
          if (row) break;
          await sleep(250);
        }
        assert.ok(row, "today's code was sent");
        assert.ok(!/(?<!\d)1[3-9]\d{9}(?!\d)/.test(await text(page, 'main')), 'numbers are masked for this role');
        // The client's phone: the file provider's log holds the text with the code.
        const sms = fs.readFileSync(path.join(server.dir, 'sms.log'), 'utf8');
        const codes = sms
          .split('\n')
          .map((l) => l.match(/(\d{6,9})\D*$/))
          .filter(Boolean)
          .map((m) => m[1]);
        assert.ok(codes.length, `a code reached the phone: ${sms.slice(-300)}`);
        s.code = codes[codes.length - 1];
      });

      await t.test('the box comes back and is reconciled', async () => {
        const page = pages.doctor;
        // The client typed today's code at home on the box's keypad: the box on the bench.
        const box = path.join(server.dir, 'data', 'box-bench', 'BOX-0009', 'box.json');
        const day0 = Date.parse(`${TODAY}T00:00:00Z`) / 86400000;
        const at = (day0 * 86400 + 9 * 3600 - 8 * 3600).toString();
        let r = boxSim(['enter', '--box', box, '--code', s.code, '--now', at]);
        assert.equal(r.code, 0, `today's code opens compartment 1: ${r.out}`);
        await page.goto(`${server.url}/clients/${s.client}`);
        let row = page.locator(`#boxes tr[data-load="${s.load}"]`);
        assert.equal(await row.locator('textarea').count(), 0, 'nothing to paste');
        // Not on the station yet (the box is still in the bag): refused at the station's place.
        fs.renameSync(box, `${box}.away`);
        await Promise.all([page.waitForNavigation(), row.locator('form[action$="/return/station"] button').click()]);
        const refused = await text(page, `#boxes tr[data-load="${s.load}"] .field-error[data-field=station]`);
        assert.ok(refused.includes('BOX-0009') && (zh ? hasCjk(refused) : !hasCjk(refused)), `refused in ${lang}: ${refused}`);
        assert.match(await text(page, `#boxes tr[data-load="${s.load}"]`), zh ? /在服务对象处/ : /with the client/, 'nothing changed');
        // Plugged in: the station reads its log with a fresh challenge and reconciles.
        fs.renameSync(`${box}.away`, box);
        row = page.locator(`#boxes tr[data-load="${s.load}"]`);
        await Promise.all([page.waitForNavigation(), row.locator('form[action$="/return/station"] button').click()]);
        assert.equal(await page.locator('.flash.error, .field-error').count(), 0);
        const read = await text(page, '.flash.ok');
        assert.ok(read.includes('BOX-0009') && /\d{1,8}/.test(read) && (zh ? hasCjk(read) : !hasCjk(read)), `the station's steps in ${lang}: ${read}`);
        assert.ok(!fs.existsSync(box), 'the box was emptied for its next load');
        const done = await text(page, `#boxes tr[data-load="${s.load}"]`);
        assert.match(done, zh ? /已归还/ : /returned/, `the load is returned: ${done}`);
        // Reconciled from the box's own log: compartment 1 opened with today's code, 2 unopened.
        t.diagnostic(`returned load: ${done.replace(/\s+/g, ' ')}`);
        const rec = await text(page, `#boxes tr[data-load="${s.load}"] .reconciliation`);
        assert.equal(rec, zh ? '已开启：1；未开启（退回库存）：2' : 'opened: 1; unopened (back to stock): 2', rec);
        assert.equal(await page.locator(`#boxes tr[data-load="${s.load}"] .secret-erased`).count(), 1, 'the secret is erased');
        // Stock: what left for good is the opened compartment's dose, to the mg.
        const st = await stockLines(pages.nurse, server);
        assert.equal(st.boxed - st.returned - (s.stock0.boxed - s.stock0.returned), s.mg[0], `stock: ${JSON.stringify(st)} from ${JSON.stringify(s.stock0)}`);
      });

      await t.test('a second take-home period right after the first: still eligible; its codes withheld', async () => {
        const page = pages.doctor;
        await page.goto(`${server.url}/clients/${s.client}`);
        const gate = page.locator('#criteria tr[data-criterion="no_missed_dose_rule"]');
        assert.equal(await gate.getAttribute('class'), 'pass', `the take-home days count as attended: ${await gate.innerText()}`);
        assert.ok(await page.locator('#takehome p.flash.ok').count(), 'still eligible');
        s.second = await loadAndHandOut(page, server, s.client, 'BOX-0009', TOMORROW);
        const row = page.locator(`#boxes tr[data-load="${s.second.load_id}"]`);
        await row.locator('.withhold-form input[name=reason]').fill(zh ? '尿检阳性' : 'positive urine test');
        await Promise.all([page.waitForNavigation(), row.locator('.withhold-form button').click()]);
        const after = await text(page, `#boxes tr[data-load="${s.second.load_id}"]`);
        assert.ok(after.includes(`${zh ? '暂停发送密码' : 'Withhold codes'} ${TODAY}`), `withheld from today: ${after}`);
      });

      await t.test('another client, approved by the police, reports the box lost', async () => {
        const page = pages.doctor;
        for (let id = 250; id > 150 && !s.lostClient; id--) {
          if (id === s.client) continue;
          await page.goto(`${server.url}/clients/${id}`);
          const form = await page.locator('#psb-request-form').count();
          const ledger = await page.locator('#ledger tbody tr').count();
          if (form && !ledger && !(await page.locator('#approval').count())) s.lostClient = id;
        }
        assert.ok(s.lostClient, 'a second eligible client');
        s.lostUic = (await text(page, 'h1')).match(/YX-\d{4}-[A-Z]{2}/)[0];
        await Promise.all([page.waitForNavigation(), page.click('#psb-request-form button[type=submit]')]);
        const police = pages.police;
        await police.goto(`${server.url}/psb`);
        const ids = await police.locator('#psb-queue tr[data-request]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.request)));
        const id = Math.max(...ids);
        const prow = police.locator(`#psb-queue tr[data-request="${id}"]`);
        await prow.locator('input[name=reason]').fill(zh ? '无犯罪记录' : 'no criminal record');
        await Promise.all([police.waitForNavigation(), prow.locator('button[value=approve]').click()]);
        const p = await loadAndHandOut(page, server, s.lostClient, 'BOX-0101', TOMORROW);
        const row = page.locator(`#boxes tr[data-load="${p.load_id}"]`);
        await row.locator('.lost-form input[name=reason]').fill(zh ? '服务对象说药盒在公交车上丢了' : 'left on a bus, the client says');
        await Promise.all([page.waitForNavigation(), row.locator('.lost-form button').click()]);
        assert.match(await text(page, `#boxes tr[data-load="${p.load_id}"] td:nth-child(4)`), zh ? /遗失/ : /lost/);
        assert.equal(await page.locator(`#boxes tr[data-load="${p.load_id}"] .lost-form`).count(), 0, 'nothing left to report');
      });

      await t.test("the doctor's worklist on the home page counts what the demo holds", async () => {
        const page = await login(server, 'doctor', lang);
        await visit(page, lang, 'home (worklist)', `${server.url}/`);
        const links = page.locator('#worklist a[data-kind]');
        const shown = {};
        for (const a of await links.all()) {
          shown[await a.getAttribute('data-kind')] = { n: Number(await a.locator('span.count').innerText()), href: await a.getAttribute('href') };
        }
        const kinds = ['orders_awaiting', 'reviews_due', 'police_answers', 'approvals_expiring', 'overdue_boxes', 'urine_due'];
        assert.deepEqual(Object.keys(shown), kinds, 'every kind, zeros too');
        const label = await text(page, '#worklist');
        assert.ok(zh ? label.includes('今日待办') : label.includes("Today's worklist"), `the worklist speaks ${lang}: ${label}`);
        if (zh) assert.ok(hasCjk(label.replace(/\d+/g, '')), `in Chinese: ${label}`);
        // The API says the same (the page's session cookie is enough for a GET).
        const api = await page.evaluate(async () => {
          const r = await fetch('/api/v1/worklist', { credentials: 'same-origin' });
          return r.json();
        });
        for (const i of api.items) assert.equal(shown[i.kind].n, i.count, `${i.kind}: the page shows the API's count`);
        // Independent figures: the rows of the day list, the home page's overdue notice, the client list's filters.
        const rows = async (url, sel) => {
          await page.goto(`${server.url}${url}`);
          return page.locator(sel).count();
        };
        assert.equal(shown.urine_due.n, await rows('/dispensing?show=urine', '#day-list tbody tr'), 'urine tests due');
        assert.equal(shown.police_answers.n, await rows('/clients?show=police_answers', '#client-filter tr[data-request]'), 'police answers of the week');
        assert.ok(shown.police_answers.n >= 1, 'the demo police answered this week');
        assert.equal(shown.approvals_expiring.n, await rows('/clients?show=approvals_expiring', '#client-filter tr[data-request]'), 'approvals ending');
        assert.equal(shown.overdue_boxes.n, await rows('/', '#overdue-boxes li'), 'the overdue notice');
        assert.equal(shown.orders_awaiting.n, await rows('/clients?show=orders_awaiting', '#client-filter tr[data-order]'), 'orders awaiting a second prescriber');
        // The reviews link leads to that many withheld rows.
        await page.goto(`${server.url}/`);
        await Promise.all([page.waitForNavigation(), page.click('#worklist a[data-kind="reviews_due"]')]);
        assert.ok(page.url().endsWith(shown.reviews_due.href), page.url());
        assert.equal(await page.locator('#day-list tr.status-withheld').count(), shown.reviews_due.n, 'withheld rows');
        assert.ok(shown.reviews_due.n >= 1, 'the demo withholds someone after missed days');
        await page.context().close();
      });

      await t.test('the manager opens the indicator dashboard with its charts', async () => {
        const page = (pages.manager = await login(server, 'manager', lang));
        await visit(page, lang, 'indicators', `${server.url}/indicators`);
        shots.push(['manager', 'indicators', '/indicators'], ['manager', 'referrals', '/referrals'], ['manager', 'staff', '/staff'], ['manager', 'audit', '/audit'], ['manager', 'audit checkpoints', '/audit/checkpoints'], ['manager', 'outbox (texts)', '/outbox']);
        const svg = page.locator('svg.chart');
        assert.ok((await svg.count()) >= 1, 'a chart');
        assert.ok((await svg.first().locator('rect').count()) >= 3, 'the chart has bars');
        assert.ok((await page.locator('#indicators tbody tr').count()) >= 10, 'the indicator table');
      });

      await t.test('the joint policy room: the police propose a lower threshold, the preview shows who would gain, the CDC and the manager sign', async () => {
        // The police propose (from tomorrow, so the policy page below still shows the default).
        const police = await login(server, 'police', lang);
        await Promise.all([police.waitForNavigation(), police.click('#nav-proposals')]);
        const version = (s.roomVersion = zh ? 'room-2027.1' : 'room-2027.1-en');
        await police.fill('#proposal-version', version);
        await police.fill('#proposal-effective-from', TOMORROW);
        await police.fill('#proposal-rationale', zh ? '稳定的服务对象外出务工' : 'Stable clients work away from home');
        await police.fill('#proposal input[name=t3_min_days_in_treatment]', '120');
        await Promise.all([police.waitForNavigation(), police.click('#proposal button[type=submit]')]);
        assert.ok((await text(police, '.flash.ok')).includes(version));
        assert.equal(await police.getAttribute('#proposal-state', 'data-state'), 'open');
        // The diff names the 3-day tier's threshold, from 180 to 120.
        const diff = await text(police, '#proposal-diff li[data-days="3"][data-field=min_days_in_treatment]');
        assert.ok(diff.includes('180') && diff.includes('120'), diff);
        // The preview: each tier's count, or "suppressed", never a UIC for the police.
        const cells = await police.locator('#preview-tiers td.now, #preview-tiers td.proposed').allInnerTexts();
        assert.equal(cells.length, 12, 'now and under the proposal, for 0 and 2 to 6 days');
        const suppressed = zh ? '人数过少，不予显示' : 'suppressed';
        for (const c of cells) assert.ok(/^\d+$/.test(c.trim()) || c.trim() === suppressed, `a count or suppressed: ${c}`);
        assert.equal(await police.locator('#preview-changes').count(), 0, 'no UIC for the police');
        const gain = await text(police, '#preview-changing');
        assert.ok(/^\d+$/.test(gain.trim()) || gain.trim() === suppressed, gain);
        await Promise.all([police.waitForNavigation(), police.click('#sign-button')]);
        assert.equal(await police.getAttribute('#proposal-signatures li[data-party=police]', 'data-signed'), 'true');
        const url = police.url().replace(server.url, '');
        await police.context().close();
        // The CDC signs.
        const cdc = await login(server, 'cdc', lang);
        await Promise.all([cdc.waitForNavigation(), cdc.click('#nav-proposals')]);
        await Promise.all([cdc.waitForNavigation(), cdc.click(`#room-proposals tr[data-version="${version}"] a`)]);
        await cdc.fill('#sign-comment', zh ? '同意' : 'agreed');
        await Promise.all([cdc.waitForNavigation(), cdc.click('#sign-button')]);
        assert.equal(await cdc.getAttribute('#proposal-signatures li[data-party=cdc]', 'data-signed'), 'true');
        await cdc.context().close();
        // The manager signs last; the proposal shows three signatures, in force from tomorrow.
        const manager = await login(server, 'manager', lang);
        await visit(manager, lang, 'policy proposal', `${server.url}${url}`);
        await Promise.all([manager.waitForNavigation(), manager.click('#sign-button')]);
        assert.equal(await manager.locator('#proposal-signatures li[data-signed=true]').count(), 3);
        assert.ok((await text(manager, '#signed-by-three')).includes(zh ? '三方均已签署' : 'Signed by all three'));
        assert.equal(await manager.getAttribute('#proposal-state', 'data-state'), 'signed');
        assert.equal(await manager.locator('#proposal-edit').count(), 0, 'a signed version is not edited');
        await manager.context().close();
      });

      await t.test('the manager adopts a take-home policy version in the page; a looser longer tier is refused at its field', async () => {
        const page = pages.manager;
        await Promise.all([page.waitForNavigation(), page.click('#nav-policy')]);
        assert.match(await text(page, '#policy-current'), /default-2026\.1/);
        const version = zh ? 'yuxi-2027.1' : 'yuxi-2027.1-en';
        await page.fill('#policy-form input[name=version]', version);
        // Five days asking fewer negative urine tests than four: refused at that input.
        await page.fill('#policy-form input[name=t5_last_urine_negative]', '3');
        await Promise.all([page.waitForNavigation(), page.click('#policy-form button[type=submit]')]);
        const err = await text(page, '#policy-form .field-error[data-field=t5_last_urine_negative]');
        assert.ok(zh ? /5 天一档的条件不得低于 4 天一档/.test(err) : /5 days may not ask less than 4 days/.test(err), err);
        assert.equal(await page.inputValue('#policy-form input[name=version]'), version, 'the name typed is kept');
        // Mended (five tests, as before) and adopted: in force and listed.
        await page.fill('#policy-form input[name=t5_last_urine_negative]', '5');
        await Promise.all([page.waitForNavigation(), page.click('#policy-form button[type=submit]')]);
        assert.ok((await text(page, '.flash.ok')).includes(version));
        assert.ok((await text(page, '#policy-current')).includes(version));
        assert.ok((await text(page, '#policy-history')).includes(version));
        shots.push(['manager', 'take-home policy', '/takehome/policy'], ['doctor', 'take-home policy (read)', '/takehome/policy']);
      });

      await t.test('the administrator maps an indicator to DHIS2; the CDC downloads a whole month', async () => {
        const admin = (pages.admin = await login(server, 'admin', lang));
        await Promise.all([admin.waitForNavigation(), admin.click('#nav-dhis2')]);
        await admin.selectOption('#dhis2-add select[name=indicator]', 'mmt_clients');
        await admin.fill('#dhis2-add input[name=category_option_combo]', 'HllvX50cXC0');
        await Promise.all([admin.waitForNavigation(), admin.click('#dhis2-add button[type=submit]')]);
        const err = await text(admin, '#dhis2-add .field-error[data-field=data_element]');
        assert.ok(zh ? /请填写/.test(err) : /Fill this in/.test(err), err);
        assert.equal(await admin.inputValue('#dhis2-add input[name=category_option_combo]'), 'HllvX50cXC0', 'typed values kept');
        const element = zh ? 'MMT_ZH' : 'MMT_EN';
        await admin.fill('#dhis2-add input[name=data_element]', element);
        await Promise.all([admin.waitForNavigation(), admin.click('#dhis2-add button[type=submit]')]);
        assert.ok((await text(admin, '#dhis2-mapping')).includes(element));
        shots.push(['admin', 'DHIS2 mapping', '/dhis2-mapping']);
        // The CDC analyst, from the indicators page: the month so far is refused at its field.
        const cdc = (pages.cdc = await login(server, 'cdc', lang));
        await Promise.all([cdc.waitForNavigation(), cdc.click('#nav-indicators')]);
        await Promise.all([cdc.waitForNavigation(), cdc.click('#dhis2-link')]);
        const last = await cdc.inputValue('#dhis2-download input[name=month]');
        const [y, m] = last.split('-').map(Number);
        const current = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
        await cdc.fill('#dhis2-download input[name=month]', current);
        await Promise.all([cdc.waitForNavigation(), cdc.click('#dhis2-download button[type=submit]')]);
        const monthErr = await text(cdc, '#dhis2-download .field-error[data-field=month]');
        assert.ok(zh ? /已经结束的月份/.test(monthErr) : /month that is over/.test(monthErr), monthErr);
        await cdc.fill('#dhis2-download input[name=month]', last);
        const [download] = await Promise.all([cdc.waitForEvent('download'), cdc.click('#dhis2-download button[type=submit]')]);
        assert.match(download.suggestedFilename(), new RegExp(`dhis2-all-${last}\\.json`));
        const set = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
        const value = set.dataValues.find((v) => v.dataElement === element);
        assert.ok(value && Number(value.value) >= 5, `the month's figure: ${JSON.stringify(set)}`);
        assert.equal(value.period, last.replace('-', ''));
        shots.push(['cdc', 'DHIS2', '/indicators/dhis2']);
      });

      await t.test('the CDC reads the twelve-month trends, suppressed like any report', async () => {
        const cdc = pages.cdc;
        await Promise.all([cdc.waitForNavigation(), cdc.click('#nav-indicators')]);
        await Promise.all([cdc.waitForNavigation(), cdc.click('#trend-link')]);
        assert.equal(await cdc.locator('#trend tbody tr[data-month]').count(), 12, 'twelve months');
        assert.equal(await cdc.locator('figure[id^=trend-] svg').count(), 4, 'a chart per indicator');
        const latest = await text(cdc, '#trend tbody tr[data-month]:last-child');
        assert.match(latest, /\d{2,}/, `the last month's clients in MMT: ${latest}`);
        shots.push(['cdc', 'trends', '/indicators/trend']);
      });

      await t.test('the CDC asks for reporting periods only: half a month is refused at the field, a quarter is shown', async () => {
        const cdc = pages.cdc;
        await Promise.all([cdc.waitForNavigation(), cdc.click('#nav-indicators')]);
        // The default is the last whole month, written as a period.
        const period = await cdc.inputValue('form.search input[name=period]');
        assert.match(period, /^\d{4}-\d{2}$/, `default period: ${period}`);
        assert.equal(await cdc.locator('form.search input[type=date]').count(), 0, 'no free dates for the CDC');
        await cdc.fill('form.search input[name=period]', '2026-11-15');
        await Promise.all([cdc.waitForNavigation(), cdc.click('form.search button[type=submit]')]);
        const err = await text(cdc, 'form.search .field-error[data-field=period]');
        assert.ok(zh ? /不是统计报告期/.test(err) : /not a reporting period/.test(err), err);
        assert.equal(await cdc.inputValue('form.search input[name=period]'), '2026-11-15', 'what was typed is kept');
        await cdc.fill('form.search input[name=period]', '2026Q3');
        await Promise.all([cdc.waitForNavigation(), cdc.click('form.search button[type=submit]')]);
        assert.equal(await cdc.locator('form.search .field-error').count(), 0);
        assert.equal(await cdc.inputValue('form.search input[name=period]'), '2026Q3');
        // Every count shown is 0, hidden (*) or at least the threshold: never 1 to 4.
        const cells = await cdc.locator('#indicators table.grid td').allInnerTexts();
        assert.ok(cells.length > 50, 'the breakdowns are on the page');
        for (const c of cells) {
          const v = c.trim();
          assert.ok(v === '*' || !/^[1-4]$/.test(v), `a small count was shown: ${v}`);
        }
        // The retention life table of the same quarter: a row per enrolment cohort, its chart,
        // no small count either; a wrong period is refused there too, at its field.
        await Promise.all([cdc.waitForNavigation(), cdc.click('#life-link')]);
        assert.ok((await cdc.locator('#life-table tbody tr[data-cohort]').count()) >= 12, 'a year of cohorts');
        assert.equal(await cdc.locator('#life-chart svg').count(), 1, 'the chart');
        for (const c of await cdc.locator('#life-table tbody td.value').allInnerTexts()) {
          assert.ok(!/^[1-4]$/.test(c.trim()), `a small count in the life table: ${c}`);
        }
        await cdc.fill('form.search input[name=period]', '2026-13');
        await Promise.all([cdc.waitForNavigation(), cdc.click('form.search button[type=submit]')]);
        const lifeErr = await text(cdc, 'form.search .field-error[data-field=period]');
        assert.ok(zh ? /不是统计报告期/.test(lifeErr) : /not a reporting period/.test(lifeErr), lifeErr);
        shots.push(['cdc', 'retention life table', '/indicators/retention']);
      });

      await t.test('a city CDC user compares the three demo centres and downloads a DHIS2 month for the city', async () => {
        const city = (pages.cityCdc = await login(server, 'cdc.yxs', lang));
        await Promise.all([city.waitForNavigation(), city.click('#nav-indicators')]);
        assert.ok((await text(city, 'main')).includes('YXS'), 'the city by default');
        await Promise.all([city.waitForNavigation(), city.click('#compare-link')]);
        const sites = await city.locator('#comparison tbody tr[data-site]').evaluateAll((rows) => rows.map((r) => r.dataset.site));
        assert.deepEqual(sites, ['YX01', 'YX02', 'YX03'], 'the city\'s three centres');
        for (const site of sites) {
          assert.match(await text(city, `#comparison tr[data-site=${site}] td[data-completeness]`), /%/, `${site}: completeness`);
        }
        // YX03 skips Sundays: less complete than YX02, which doses every day.
        const done = async (site) => Number(await city.getAttribute(`#comparison tr[data-site=${site}] td[data-completeness]`, 'data-completeness'));
        assert.ok((await done('YX03')) < (await done('YX02')), 'YX03 is less complete');
        // The province is above the city: refused at the field, nothing shown, the code kept.
        await city.fill('#compare-form input[name=unit]', 'YN');
        await Promise.all([city.waitForNavigation(), city.click('#compare-form button[type=submit]')]);
        const err = await text(city, '#compare-form .field-error[data-field=unit]');
        assert.ok(zh ? /超出您的权限范围/.test(err) : /outside your scope/.test(err), err);
        assert.equal(await city.inputValue('#compare-form input[name=unit]'), 'YN');
        assert.equal(await city.locator('#comparison').count(), 0, 'nothing disclosed');
        await city.fill('#compare-form input[name=unit]', 'YXS');
        await Promise.all([city.waitForNavigation(), city.click('#compare-form button[type=submit]')]);
        await Promise.all([city.waitForNavigation(), city.click('#compare-dhis2')]);
        const [download] = await Promise.all([city.waitForEvent('download'), city.click('#dhis2-download button[type=submit]')]);
        assert.match(download.suggestedFilename(), /^dhis2-YXS-\d{4}-\d{2}\.json$/);
        const set = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
        const units = new Set(set.dataValues.map((v) => v.orgUnit));
        for (const code of ['CN530400', 'CN530402-01', 'CN530402-02', 'CN530403-01']) {
          assert.ok(units.has(code), `${code} in ${JSON.stringify([...units])}`);
        }
        shots.push(['cityCdc', 'compare centres', '/indicators/compare'], ['admin', 'organisation units', '/org-units']);
      });

      await t.test("box GPS: the centre sees the zone and the alarm, the police one word", async () => {
        // The demo's second box is out with GPS and has left its home zone.
        const page = pages.doctor;
        await visit(page, lang, 'home (alarms)', `${server.url}/`);
        const alarms = await text(page, '#box-alarms');
        assert.ok(alarms.includes(zh ? '离开住所' : 'Left home'), `alarm on the home page: ${alarms}`);
        const link = await page.locator('#box-alarms a[href$="/gps"]').first().getAttribute('href');
        await visit(page, lang, 'box GPS', `${server.url}${link}`);
        s.gpsClient = Number((await page.locator('main a[href^="/clients/"]').first().getAttribute('href')).split('/').pop());
        shots.push(['doctor', 'home (alarms)', '/'], ['doctor', 'box GPS', link]);
        assert.equal(await page.locator('#gps-state [data-presence]').getAttribute('data-presence'), 'away');
        assert.ok((await page.locator('svg#gps-drawing circle.fix').count()) >= 5, 'recent fixes drawn');
        assert.equal(await page.locator('img, image').count(), 0, 'no map tiles');
        // The police: of the approved requests, the one whose box is tracked shows a word.
        const police = pages.police;
        await police.goto(`${server.url}/psb`);
        const looks = await police.locator('#psb-queue a[href$="/box"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
        assert.ok(looks.length >= 1, 'approved requests offer a look at the box');
        let word = null;
        for (const href of looks) {
          const r = await police.goto(`${server.url}${href}`);
          if (r.status() === 200) {
            s.policeLook = href;
            word = await police.locator('#box-state').getAttribute('data-presence');
            shots.push(['police', 'box state', href]);
            const all = await text(police, 'main');
            assert.ok(!/\d+\.\d{3,}/.test(all), `no coordinates: ${all}`);
            break;
          }
        }
        assert.ok(['at_home', 'away', 'unknown'].includes(word), `a state word: ${word}`);
      });

      await t.test('every main page: no horizontal scrolling, a label on every field; screenshots', async () => {
        const problems = [];
        for (const size of SIZES) {
          const anon = await (await theBrowser()).newPage({ viewport: size, locale: lang });
          await anon.goto(`${server.url}/login`);
          await anon.evaluate((l) => document.documentElement.lang !== l && document.querySelector('#lang-switch').click(), lang);
          await anon.waitForLoadState('load');
          for (const p of await pageProblems(anon)) problems.push(`login ${size.width}: ${p}`);
          await anon.screenshot({ path: path.join(SHOTS, `${lang}-login-${size.width}x${size.height}.png`) });
          await anon.close();
          for (const [role, name, url] of shots) {
            const page = pages[role];
            await page.setViewportSize(size);
            await visit(page, lang, name, `${server.url}${url}`);
            for (const p of await pageProblems(page)) problems.push(`${name} (${role}) ${size.width}: ${p}`);
            const file = `${lang}-${name.replace(/[^a-z0-9]+/gi, '-')}-${size.width}x${size.height}.png`;
            await page.screenshot({ path: path.join(SHOTS, file) }); // what fits the screen
          }
        }
        for (const role of Object.keys(pages)) await pages[role].setViewportSize(SIZES[0]);
        assert.deepEqual(problems, [], problems.join('\n'));
      });

      await t.test('keyboard focus order on the login and dispensing pages', async () => {
        const anon = await (await theBrowser()).newPage({ viewport: SIZES[0] });
        await anon.goto(`${server.url}/login`);
        await anon.focus('a.brand');
        const order = await tabOrder(anon, 8);
        assert.deepEqual(order.map((o) => o.key).slice(0, 3), ['username', 'password', 'login-submit'], JSON.stringify(order));
        assertVisualOrder(order, 'login');
        await anon.close();
        const page = pages.nurse;
        await page.goto(`${server.url}/dispensing`);
        assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'uic');
        await page.focus('a.brand');
        const d = await tabOrder(page, 20);
        assert.deepEqual(d.map((o) => o.key).slice(0, 2), ['uic', 'dose-submit'], JSON.stringify(d));
        assertVisualOrder(d, 'dispensing');
      });

      if (zh) {
        await t.test('no untranslated text in the Chinese pages', async () => {
          const problems = [];
          for (const [role, name, url] of shots) {
            const page = pages[role];
            await page.goto(`${server.url}${url}`);
            for (const p of await untranslated(page)) problems.push(`${name}: ${p}`);
          }
          assert.deepEqual(problems, [], problems.join('\n'));
        });
      }
      await t.test('the manager adds a colleague, resets the password, and searches the audit trail', async () => {
        const page = pages.manager;
        const user = zh ? 'e2e.zh.peer' : 'e2e.en.peer';
        await page.goto(`${server.url}/staff`);
        await page.fill('#add-staff input[name=username]', user);
        await page.fill('#add-staff input[name=full_name]', zh ? '陈小红' : 'Chen Xiaohong');
        await page.selectOption('#add-staff select[name=role]', 'peer_educator');
        await page.fill('#add-staff input[name=password]', 'outreach-on-fridays-77');
        await Promise.all([page.waitForNavigation(), page.click('#add-staff button[type=submit]')]);
        const row = page.locator(`tr[data-username="${user}"]`);
        assert.match(await row.innerText(), zh ? /陈小红/ : /Chen Xiaohong/);
        await Promise.all([page.waitForNavigation(), row.locator('.reset-form button').click()]);
        const temporary = (await text(page, '#temporary-password code')).trim();
        assert.match(temporary, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/, temporary);
        // The colleague logs in with it and is held at the password page until they choose one.
        const b = await theBrowser();
        const ctx = await b.newContext({ locale: lang === 'en' ? 'en-US' : 'zh-CN' });
        const peer = await ctx.newPage();
        await peer.goto(`${server.url}/login`);
        await peer.fill('input[name=username]', user);
        await peer.fill('input[name=password]', temporary);
        await Promise.all([peer.waitForNavigation(), peer.click('#login-submit')]);
        if ((await peer.getAttribute('html', 'lang')) !== lang) await Promise.all([peer.waitForNavigation(), peer.click('#lang-switch')]);
        await peer.goto(`${server.url}/clients`);
        assert.ok(peer.url().endsWith('/password'), `held at the password page: ${peer.url()}`);
        await peer.fill('#password-form input[name=current]', temporary);
        await peer.fill('#password-form input[name=new]', 'outreach-on-saturdays-88');
        await peer.fill('#password-form input[name=confirm]', 'outreach-on-saturdays-88');
        await Promise.all([peer.waitForNavigation(), peer.click('#password-form button[type=submit]')]);
        assert.match(await text(peer, '.flash.ok'), zh ? /密码已更改/ : /password is changed/);
        // A peer educator sees the UIC, never the clinical record.
        await peer.goto(`${server.url}/clients/${s.client}`);
        for (const sel of ['#orders', '#urine', '#takehome', '#access-trail']) {
          assert.equal(await peer.locator(sel).count(), 0, `a peer educator does not see ${sel}`);
        }
        await ctx.close();
        // The audit trail, filtered by the client's UIC typed in lower case, in the page's language.
        await visit(page, lang, 'audit (search)', `${server.url}/audit`);
        await page.fill('#audit-filter input[name=uic]', s.uic.toLowerCase());
        await Promise.all([page.waitForNavigation(), page.click('#audit-filter button[type=submit]')]);
        const rows = await page.locator('#audit-trail tbody tr').allInnerTexts();
        assert.ok(rows.length >= 5, `entries about ${s.uic}: ${rows.length}`);
        assert.ok(rows.every((r) => r.includes(s.uic)), 'every entry is about that client');
        if (zh) assert.ok(rows.some((r) => r.includes('查阅服务对象档案')), 'actions in Chinese');
        // From the audit page: sign a checkpoint of the trail to print or hand to a second party.
        await Promise.all([page.waitForNavigation(), page.click('#checkpoints-link')]);
        await Promise.all([page.waitForNavigation(), page.click('#checkpoint-form button[type=submit]')]);
        const signed = await text(page, '.flash.ok');
        assert.ok(zh ? hasCjk(signed) : /entry \d+/.test(signed), `signed, in ${lang}: ${signed}`);
        const seq = await page.locator('#latest-checkpoint').getAttribute('data-seq');
        assert.ok(Number(seq) > 0 && (await text(page, 'pre.checkpoint')).includes(`seq=${seq}`), 'the signed text names the entry');
      });

      await t.test('discharge with a box out: a warning first; then its codes stop and the police see no box state', async () => {
        const page = pages.doctor;
        await page.goto(`${server.url}/clients/${s.gpsClient}`);
        s.gpsUic = (await text(page, 'h1')).match(/YX-\d{4}-[A-Z]{2}/)[0];
        // The form warns of the box before anything is sent, and asks to confirm.
        const warn = await text(page, '#discharge-form .box-out');
        assert.ok(/BOX-\d{4}/.test(warn) && (zh ? hasCjk(warn) : !hasCjk(warn)), `the box out is named first: ${warn}`);
        await page.fill('#discharge-form input[name=reason]', zh ? '搬到外省居住' : 'moved to another province');
        await page.check('#discharge-form input[name=confirm_box_out]');
        await Promise.all([page.waitForNavigation(), page.click('#discharge-form button[type=submit]')]);
        assert.match(await text(page, '#boxes'), zh ? /治疗已结束，待归还/ : /treatment ended, to be returned/);
        const police = pages.police;
        const r = await police.goto(`${server.url}${s.policeLook}`);
        assert.notEqual(r.status(), 200, 'the police see no box state once the treatment ended');
      });

      await t.test('the next morning: the withheld and the lost box send their clients to the window; no code for the discharged client', async () => {
        for (const p of Object.values(pages)) await p.context().close().catch(() => {});
        for (const k of Object.keys(pages)) delete pages[k];
        await restartServer(server, NEXT_MORNING);
        t.diagnostic(`restarted at ${NEXT_MORNING} in ${server.startMs} ms`);
        await sleep(1500); // one round of the SMS worker at the code hour
        const nurse = (pages.nurse = await login(server, 'nurse', lang));
        for (const uic of [s.uic, s.lostUic]) {
          await doseAtWindow(nurse, server, uic);
          const ok = await text(nurse, '.flash.ok').catch(() => '');
          assert.ok(ok.includes(uic), `${uic} is dosed at the window (its box's code never went out): ${ok || (await text(nurse, 'main'))}`);
        }
        const doctor = (pages.doctor = await login(server, 'doctor', lang));
        for (const id of [s.client, s.lostClient, s.gpsClient]) {
          await doctor.goto(`${server.url}/clients/${id}`);
          const states = await doctor
            .locator('#client-messages tbody tr')
            .evaluateAll((rs, day) => rs.filter((r) => r.innerText.includes(day)).map((r) => r.dataset.state), TOMORROW);
          assert.ok(states.length >= 1, `client ${id} had a code for ${TOMORROW}`);
          assert.deepEqual([...new Set(states)], ['stopped'], `client ${id}: no code went out this morning (${states})`);
        }
        // The version the police, the CDC and the manager signed is in force from this morning:
        // the policy page and the client's take-home decision name it.
        await doctor.goto(`${server.url}/takehome/policy`);
        assert.ok((await text(doctor, 'main')).includes(s.roomVersion), `the signed version ${s.roomVersion} is in force`);
        await doctor.goto(`${server.url}/clients/${s.client}`);
        const decision = await text(doctor, '#takehome');
        assert.ok(decision.includes(s.roomVersion), `the next decision names ${s.roomVersion}: ${decision}`);
        const police = (pages.police = await login(server, 'police', lang));
        const r = await police.goto(`${server.url}${s.policeLook}`);
        assert.notEqual(r.status(), 200, 'still no box state for the police');
      });

      await t.test('the manager closes the centre for a holiday; a day in the past is refused at the field', async () => {
        const page = (pages.manager = await login(server, 'manager', lang));
        await Promise.all([page.waitForNavigation(), page.click('#nav-calendar')]);
        assert.ok(page.url().endsWith('/calendar'), page.url());
        // A day gone by: refused at the date, in the page's language, the note kept.
        const note = zh ? '春节' : 'Spring Festival';
        const past = '2026-11-20';
        await page.fill('#closure-form input[name=day]', past);
        await page.fill('#closure-form input[name=note]', note);
        await Promise.all([page.waitForNavigation(), page.click('#closure-submit')]);
        const err = await text(page, '#closure-form .field-error[data-field=day]');
        assert.ok(err.includes(past) && (zh ? /已经过去/.test(err) : /is past/.test(err)), `refused at the field, in ${lang}: ${err}`);
        assert.equal(await page.inputValue('#closure-form input[name=note]'), note, 'the note typed is kept');
        // The Spring Festival of 2027: listed, with the clients whose dose is not yet covered.
        const festival = '2027-02-06';
        await page.fill('#closure-form input[name=day]', festival);
        await Promise.all([page.waitForNavigation(), page.click('#closure-submit')]);
        assert.ok((await text(page, '.flash.ok')).includes(festival));
        const row = page.locator(`#closures tr[data-day="${festival}"]`);
        assert.ok((await row.innerText()).includes(note), 'the note is listed');
        const uncovered = Number(await row.getAttribute('data-uncovered'));
        assert.ok(uncovered >= 1, `demo clients are dosed at the centre: ${uncovered}`);
        const said = await text(page, `#closures tr[data-day="${festival}"] td.uncovered`);
        assert.ok(said.includes(String(uncovered)) && (zh ? /服药人员/.test(said) : /without a covering dose/.test(said)), said);
        assert.equal(await row.locator('a[data-uic]').count(), uncovered, 'each uncovered client by UIC');
        if (zh) assert.deepEqual(await untranslated(page), [], 'the calendar is in Chinese');
      });
    } finally {
      for (const p of Object.values(pages)) await p.context().close().catch(() => {});
      stopServer(server);
    }
  });
}
