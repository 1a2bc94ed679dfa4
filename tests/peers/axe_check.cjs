// Runs the axe-core accessibility checker (npm `axe-core`, pinned in package.json) on pages in the installed
// headless Chromium, through the Chrome DevTools Protocol over Node 22's built-in WebSocket: no puppeteer, no
// browser download.
//
//   node axe_check.cjs CHROMIUM AXE_JS URL...
//
// Prints one JSON line per URL: {"url": ..., "violations": [{"id", "impact", "help", "nodes": [{"target",
// "summary"}]}]}, for the WCAG 2.0/2.1 A and AA rules. Exits 0 when every page was checked (violations or not),
// 1 on any failure to check (browser did not start, page did not load, 60 s overall deadline). Chromium runs in
// this process's group and is killed on exit.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [chromium, axePath, ...urls] = process.argv.slice(2);
if (!chromium || !axePath || urls.length === 0) {
  console.error('usage: axe_check.cjs CHROMIUM AXE_JS URL...');
  process.exit(64);
}
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-axe-'));
const browser = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--remote-debugging-address=127.0.0.1',
  '--remote-debugging-port=0', '--window-size=1280,2000', `--user-data-dir=${profile}`, 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe'] });

function finish(code, message) {
  if (message) console.error(`axe_check: ${message}`);
  try { browser.kill('SIGKILL'); } catch (_) { /* already gone */ }
  try { fs.rmSync(profile, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  process.exit(code);
}
setTimeout(() => finish(1, 'deadline (60 s) passed'), 60_000).unref();
browser.on('exit', (code) => finish(1, `chromium exited (${code}) before the checks finished`));

function devtoolsUrl() {
  return new Promise((resolve, reject) => {
    let seen = '';
    browser.stderr.on('data', (chunk) => {
      seen = (seen + chunk.toString()).slice(-8192);
      const m = seen.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    browser.on('error', reject);
  });
}

async function main() {
  const ws = new WebSocket(await devtoolsUrl());
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  let next = 0;
  const pending = new Map();
  const waiters = [];
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else if (msg.method) {
      for (const w of waiters.slice()) {
        if (w.method === msg.method && w.sessionId === msg.sessionId) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(msg.params);
        }
      }
    }
  };
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }));
  });
  const once = (method, sessionId) => new Promise((resolve) => waiters.push({ method, sessionId, resolve }));
  const axe = fs.readFileSync(axePath, 'utf8');

  for (const url of urls) {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    await send('Page.enable', {}, sessionId);
    const loaded = once('Page.loadEventFired', sessionId);
    const nav = await send('Page.navigate', { url }, sessionId);
    if (nav.errorText) throw new Error(`${url}: ${nav.errorText}`);
    await loaded;
    await send('Runtime.evaluate', { expression: axe }, sessionId);
    const run = `axe.run(document, {runOnly: {type: 'tag', values: ${JSON.stringify(TAGS)}}}).then(r =>
      JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))}))))`;
    const res = await send('Runtime.evaluate', { expression: run, awaitPromise: true, returnByValue: true },
      sessionId);
    if (res.exceptionDetails) throw new Error(`${url}: ${JSON.stringify(res.exceptionDetails)}`);
    console.log(JSON.stringify({ url, violations: JSON.parse(res.result.value) }));
    await send('Target.closeTarget', { targetId });
  }
  ws.close();
}

main().then(() => finish(0), (e) => finish(1, e && e.stack ? e.stack : String(e)));
