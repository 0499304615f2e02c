import test from 'ava';
import { access, mkdir, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { request } from 'undici';
import { Value } from '@sinclair/typebox/value';
import { chromium } from 'playwright-core';
import { API_PREFIX, HEADER, SupernodeStatusSchema, type SupernodeStatus } from '@shoal/core';
import { requireTools } from '@shoal/testkit';
import { startOpsSwarm } from './helpers/ops-swarm.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Where the docs' screenshot lives; written only with SHOAL_UPDATE_SCREENSHOTS=1. */
const DOC_SCREENSHOT = fileURLToPath(new URL('../../../docs/img/status-page.png', import.meta.url));

// The status page in a real headless Chromium against a real supernode with
// three live node agents (two zones), an image pulled through every node and
// a preheat job: the HTML shell is public, the data needs the cluster token,
// which the page asks for; then it shows every peer healthy with its zone,
// each blob of the image with three copies on nodes, the bytes the registry
// was spared, and the preheat job done.
test('the status page shows live peers, blobs with their copies, registry bytes saved and preheat progress, after asking for the token', async (t) => {
  await requireTools(['docker-registry', 'skopeo']);
  await access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  });
  const swarm = await startOpsSwarm({ nodes: 3 });
  t.teardown(() => swarm.close());
  const base = swarm.supernode.url;

  // The API needs the token; the shell does not, and tells the browser to keep the page to itself.
  const denied = await request(`${base}${API_PREFIX}/status`);
  await denied.body.dump();
  t.is(denied.statusCode, 401, 'the status API needs the token');
  const shell = await request(`${base}/status`);
  const html = await shell.body.text();
  t.is(shell.statusCode, 200);
  t.regex(String(shell.headers['content-type']), /^text\/html/);
  t.regex(String(shell.headers['content-security-policy']), /connect-src 'self'/);
  t.notRegex(html, new RegExp(swarm.token), 'the shell holds no secret');
  const api = await request(`${base}${API_PREFIX}/status`, { headers: { [HEADER.token]: swarm.token } });
  const status = (await api.body.json()) as SupernodeStatus;
  t.true(Value.Check(SupernodeStatusSchema, status), JSON.stringify([...Value.Errors(SupernodeStatusSchema, status)].slice(0, 3)));
  const layers = swarm.image.layers.map((l) => l.digest);
  for (const d of layers) t.is(status.blobs.swarm.find((b) => b.digest === d)?.copies, 3, `${d} has a copy on each node`);
  t.true(status.registry.savedBytes > 0, `registry bytes saved: ${JSON.stringify(status.registry)}`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(`${base}/status`);
  await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
  await page.fill('#token', 'not-the-token');
  await page.click('#login button');
  await page.locator('#error').filter({ hasText: 'refused' }).waitFor({ timeout: 10_000 });
  await page.fill('#token', swarm.token);
  await page.click('#login button');
  await page.locator('body[data-loaded="true"]').waitFor({ timeout: 10_000 });

  const peerRows = page.locator('#peers tr[data-peer]');
  t.is(await peerRows.count(), 3, 'one row per live peer');
  t.is(await page.locator('#peers .dot.ok').count(), 3, 'every peer healthy');
  const peerText = await page.locator('#peers').innerText();
  for (const node of swarm.nodes) t.regex(peerText, new RegExp(`${node.name}\\s+${node.zone}`), `${node.name} in ${node.zone}`);
  for (const d of layers) {
    const row = page.locator(`#blobs tr[data-blob="${d}"]`);
    t.regex(await row.innerText(), /\b3\b/, `${d} shows 3 copies`);
    t.is(await row.locator('.copies i:not(.part)').count(), 3);
  }
  t.notRegex(await page.locator('#t-saved').innerText(), /^0 B$|–/, 'registry bytes saved shown');
  t.regex(await page.locator('#t-peers').innerText(), /^3 \/ 3$/);
  const preheat = await page.locator('#preheat').innerText();
  t.true(preheat.includes(swarm.preheatImage), preheat);
  t.regex(preheat, /done/);
  t.true(await page.locator('#ipj-section').isHidden(), 'no ImagePullJob section without the controller');
  t.deepEqual(consoleErrors.filter((e) => !e.includes('401')), [], 'no script error');

  const out = process.env.SHOAL_UPDATE_SCREENSHOTS === '1' ? DOC_SCREENSHOT : join(swarm.dir, 'status-page.png');
  await mkdir(join(out, '..'), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  t.true((await stat(out)).size > 10_000, 'a real screenshot');
});
