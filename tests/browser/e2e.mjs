// End-to-end test of the daemon's pages in a real browser (Debian's Chromium, headless,
// driven by playwright-core). Run by tests/browser.rs against a daemon it starts:
//
//   node tests/browser/e2e.mjs <daemon url> <output dir>
//
// The daemon must run the shipped demo config (agent chen serves support) with the admin
// token "admin-secret". A customer chats, an agent takes it and answers, the customer rates
// it, and the wallboard follows along live; then the agent answers, transfers and completes
// webhook contacts. On failure every page is screenshotted into the output directory.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node e2e.mjs <daemon url> <output dir>');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const ADMIN_TOKEN = 'admin-secret';
const executablePath = process.env.SWITCHBOARD_CHROMIUM || '/usr/bin/chromium';

const pages = {};
const problems = [];
const log = [];
let step = 'launching chromium';

function note(line) {
  log.push(`${new Date().toISOString()} ${line}`);
}

/**
 * The agent desk's websocket, passed through Playwright so the test can cut it the way a
 * network drop does: both ends see the connection close.
 */
const agentLink = {
  connections: 0,
  current: null,
  async attach(page) {
    await page.routeWebSocket(/\/v1\/agent\/ws/, (ws) => {
      const server = ws.connectToServer();
      this.connections += 1;
      this.current = { ws, server };
    });
  },
  async cut() {
    check(this.current, 'the desk has no connection to cut');
    const { ws, server } = this.current;
    this.current = null;
    // Closing one side closes the other: the daemon and the page both see the socket go.
    await ws.close({ code: 4000, reason: 'network cut by the test' });
    await server.close().catch(() => {});
  },
};

async function open(browser, name, path, prepare) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  if (prepare) await prepare(page);
  page.setDefaultTimeout(10000);
  page.on('console', (message) => {
    note(`[${name}] console.${message.type()}: ${message.text()}`);
    if (message.type() === 'error' && /Content Security Policy|Refused to/.test(message.text())) {
      problems.push(`${name}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => {
    note(`[${name}] uncaught: ${error.stack || error}`);
    problems.push(`${name}: uncaught ${error.message}`);
  });
  pages[name] = page;
  await page.goto(base + path);
  return page;
}

function check(condition, message) {
  if (!condition) throw new Error(`${step}: ${message}`);
}

/** Waits for text inside a locator: a substring, or a regular expression. */
async function sees(locator, text) {
  try {
    await locator.filter({ hasText: text }).first().waitFor();
  } catch (error) {
    // Say what the page shows instead: the first thing to know when a step times out.
    let shown = '';
    try { shown = await locator.first().innerText({ timeout: 1000 }); } catch { shown = '(nothing)'; }
    throw new Error(`${error.message}\nwhat it shows instead: ${JSON.stringify(shown)}`);
  }
}

/** With SWITCHBOARD_SCREENSHOTS set, a picture of a page mid-way, for people to look at. */
async function snap(page, name) {
  if (process.env.SWITCHBOARD_SCREENSHOTS) await page.screenshot({ path: join(out, `${name}.png`) });
}

async function postContact(contact) {
  const answer = await fetch(`${base}/v1/contacts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(contact),
  });
  const text = await answer.text();
  check(answer.status === 202, `intake answered ${answer.status}: ${text}`);
  return JSON.parse(text).id;
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // Playwright adds --headless and --no-sandbox, and gives every launch a fresh, empty
    // profile directory. The rest keep Chromium off the network: this machine's closed
    // network refuses its background connections, many at a time.
    args: [
      '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
  let failure = null;
  try {
    await run(browser);
  } catch (error) {
    failure = error;
  }
  if (failure || process.env.SWITCHBOARD_SCREENSHOTS) {
    for (const [name, page] of Object.entries(pages)) {
      await page.screenshot({ path: join(out, `${name}.png`), fullPage: true }).catch(() => {});
    }
  }
  writeFileSync(join(out, 'browser.log'), log.join('\n') + '\n');
  await browser.close();
  if (failure) throw failure;
}

async function run(browser) {
  step = 'the wallboard asks for the admin token and shows the queues';
  const wall = await open(browser, 'wallboard', '/wallboard');
  await wall.getByLabel("The daemon's admin token").fill(ADMIN_TOKEN);
  await wall.getByRole('button', { name: 'Show the wallboard' }).click();
  const supportRow = wall.locator('#queues tr[data-queue="support"]');
  await supportRow.waitFor();
  await sees(wall.locator('#live'), 'live');

  step = 'the agent signs in with the keyboard and starts away';
  const agent = await open(browser, 'agent', '/agent', (page) => agentLink.attach(page));
  await agent.getByLabel('Agent token').focus();
  await agent.keyboard.type('chen-demo-token');
  await agent.keyboard.press('Enter');
  await sees(agent.locator('#who'), 'Chen Example');
  await sees(agent.locator('#state-pill'), 'Away: not ready');

  step = 'the customer starts a chat and picks technical support';
  const chat = await open(browser, 'chat', '/chat');
  await chat.getByLabel('Your name').fill('Bob');
  await chat.getByLabel('How can we help?').fill('My router blinks red.');
  await chat.getByRole('button', { name: 'Start chat' }).click();
  await sees(chat.locator('#menu-prompt'), 'What can we help you with?');
  await chat.getByRole('button', { name: 'Technical support' }).click();
  await sees(chat.locator('#position'), 'You are next in line');

  step = 'the wallboard shows the customer waiting, live';
  await sees(supportRow.locator('td').nth(0), /^1$/);

  step = 'the agent goes available and gets the offer with a countdown';
  await agent.getByRole('button', { name: 'Available', exact: true }).click();
  const offer = agent.getByRole('article', { name: /Offer/ });
  await offer.waitFor();
  await sees(offer, 'My router blinks red.');
  check(/\d+:\d\d/.test(await offer.locator('.countdown').textContent()), 'no countdown on the offer');

  step = 'the agent accepts with the keyboard (the offer has the focus)';
  await agent.keyboard.press('Enter');
  const chatTab = agent.getByRole('tab', { name: /chat · Bob/ });
  await chatTab.waitFor();
  check(await chatTab.getAttribute('aria-selected') === 'true', 'the new contact tab is not selected');
  const panel = agent.getByRole('tabpanel');
  await sees(panel, 'support');
  await sees(panel.locator('.sla'), 'First response due in');
  await sees(chat.locator('#conversation'), 'Chen Example joined the chat.');
  await sees(agent.locator('#state-pill'), 'Busy');

  step = 'the customer types and writes; the agent sees both';
  await chat.getByLabel('Your message').fill('Still blinking.');
  await sees(panel.locator('.typing'), 'Bob is typing');
  await chat.getByLabel('Your message').press('Enter');
  await sees(panel.locator('.conversation'), 'Still blinking.');

  step = 'the agent types and replies; the customer sees both';
  await agent.getByLabel('Reply to the customer').fill('Unplug it for 10 s.');
  await sees(chat.locator('#typing'), 'Chen Example is typing');
  await agent.getByRole('button', { name: 'Send reply' }).click();
  await sees(chat.locator('#conversation li').filter({ hasText: 'Chen Example' }), 'Unplug it for 10 s.');
  await sees(panel.locator('.conversation li.mine'), 'Unplug it for 10 s.');
  await sees(panel.locator('.sla'), 'First response given');
  await snap(agent, 'agent-in-a-chat');
  await snap(chat, 'chat-with-an-agent');

  step = 'the customer ends the chat and rates it';
  await chat.getByRole('button', { name: 'End chat' }).click();
  await sees(chat.locator('#conversation'), 'You ended the chat.');
  await chat.getByRole('radio', { name: '5' }).check();
  await chat.getByLabel('Comment (optional)').fill('Quick and kind.');
  await chat.getByRole('button', { name: 'Send rating' }).click();
  await sees(chat.locator('#status'), 'Thank you for your rating!');

  step = 'the agent sees the chat end, wraps up and is ready again';
  await sees(panel, 'the customer left');
  await sees(agent.locator('#state-pill'), 'Wrap-up');
  await agent.getByRole('button', { name: 'Ready' }).click();
  await sees(agent.locator('#state-pill'), 'Available');
  await agent.getByRole('button', { name: 'Close tab' }).click();
  await agent.locator('#no-contacts').waitFor();

  step = 'the wallboard shows support empty, the answer and the rating counted';
  await sees(supportRow.locator('td').nth(0), /^0$/);
  await sees(supportRow.locator('td').nth(6), '1 · 5.0');
  await sees(wall.locator('#total-ratings'), /^1$/);
  await sees(wall.locator('#states section[data-state="available"]'), 'Chen Example');

  step = 'an email contact: the agent replies, completes it with a disposition and is ready';
  const emailId = await postContact({
    channel: 'email', queue: 'support', subject: 'Invoice copy',
    body: 'Could you send me a copy of my last invoice?',
    customer: { name: 'Ada', email: 'ada@example.org' },
  });
  await agent.getByRole('article', { name: `Offer ${emailId}` }).getByRole('button', { name: 'Accept' }).click();
  const emailTab = agent.getByRole('tab', { name: /email · Ada/ });
  await emailTab.waitFor();
  await sees(panel, 'Could you send me a copy of my last invoice?');
  await sees(panel, 'Invoice copy');
  await agent.getByLabel('Reply to the customer').fill('Attached, with our apologies.');
  await agent.getByLabel('Reply to the customer').press('Control+Enter');
  await sees(panel.locator('.conversation li.mine'), 'Attached, with our apologies.');
  await agent.getByLabel('Disposition').selectOption('resolved');
  await agent.getByRole('button', { name: 'Complete' }).click();
  await sees(panel, 'completed (resolved)');
  await sees(agent.locator('#state-pill'), 'Wrap-up');
  await agent.getByRole('button', { name: 'Ready' }).click();
  await sees(agent.locator('#state-pill'), 'Available');
  await agent.getByRole('button', { name: 'Close tab' }).click();

  step = 'an SMS contact transferred to billing leaves the agent and waits there';
  const smsId = await postContact({
    channel: 'sms', queue: 'support', body: 'I was charged twice.', customer: { name: 'Cy', phone: '+15550100' },
  });
  await agent.getByRole('article', { name: `Offer ${smsId}` }).getByRole('button', { name: 'Accept' }).click();
  await agent.getByRole('tab', { name: /sms · Cy/ }).waitFor();
  await agent.getByLabel('Transfer to queue').fill('billing');
  await agent.getByRole('button', { name: 'Transfer' }).click();
  await sees(panel, 'This contact ended: transferred');
  const billingRow = wall.locator('#queues tr[data-queue="billing"]');
  await sees(billingRow.locator('td').nth(0), /^1$/);
  check(await billingRow.locator('td').nth(0).getAttribute('class') === 'at-risk',
    'a queue with contacts waiting and nobody available is not flagged');
  await sees(agent.locator('#state-pill'), 'Wrap-up');
  await agent.getByRole('button', { name: 'Ready' }).click();
  await sees(agent.locator('#state-pill'), 'Available');
  await agent.getByRole('button', { name: 'Close tab' }).click();

  step = 'the agent desk shows that it is offline and reconnects by itself';
  // Cut the desk's connection in the middle, as a network drop would.
  await agentLink.cut();
  await sees(agent.locator('#connection'), 'Offline');
  await sees(agent.locator('#state-pill'), 'Offline');
  await agent.locator('#connection').waitFor({ state: 'hidden', timeout: 15000 });
  await sees(agent.locator('#state-pill'), 'Available');
  check(agentLink.connections >= 2, 'the desk did not open a new connection');
  await sees(wall.locator('#states section[data-state="available"]'), 'Chen Example');

  step = 'one script tag puts the chat on another site';
  const site = await open(browser, 'widget', '/healthz');
  await site.setContent(`<!doctype html><html lang="en"><title>Shop</title><body><h1>A shop</h1>
    <script src="${base}/chat/widget.js"></script></body></html>`);
  await site.getByRole('button', { name: 'Chat with us' }).click();
  const widget = site.frameLocator('iframe[title="Chat with us"]');
  await widget.getByLabel('Your name').waitFor();
  await sees(widget.getByRole('heading', { level: 1 }), 'Chat with us');
  await sees(site.getByRole('button', { name: 'Close chat' }), 'Close chat');

  step = 'no page broke its content security policy or threw';
  check(problems.length === 0, problems.join('; '));
}

main().then(
  () => console.log('e2e: ok'),
  (error) => {
    process.exitCode = 1;
    console.error(`e2e failed at "${step}": ${error.stack || error}`);
    console.error(`screenshots and browser.log in ${out}`);
  },
);
