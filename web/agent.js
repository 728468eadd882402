// Switchboard agent desktop: a reference client of the agent websocket /v1/agent/ws, every
// frame as docs/protocol.md describes it. No framework: the page is small enough to read
// top to bottom, and it is built with textContent only, so nothing a customer writes can
// become markup.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  /** A DOM element with properties (attributes for names with a dash) and children. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'class') node.className = value;
      else if (key.includes('-') || key === 'for' || key === 'role' || key === 'list') node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** "4:05" or "1:02:03"; negative durations read "-0:12". */
  function clock(ms) {
    const sign = ms < 0 ? '-' : '';
    let s = Math.floor(Math.abs(ms) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    const pad = (n) => String(n).padStart(2, '0');
    return h > 0 ? `${sign}${h}:${pad(m)}:${pad(s)}` : `${sign}${m}:${pad(s)}`;
  }

  function customerName(customer) {
    if (customer === null || customer === undefined) return 'unknown customer';
    if (typeof customer !== 'object') return String(customer);
    const name = customer.name || customer.id || customer.email || customer.phone;
    const extra = customer.email && customer.name ? ` <${customer.email}>` : '';
    return name ? `${name}${extra}` : JSON.stringify(customer);
  }

  const TOKEN_KEY = 'switchboard.agent.token';
  /** Written channels the daemon can reply on today (docs/protocol.md, `reply`). */
  const REPLY_CHANNELS = new Set(['chat', 'email']);
  const DISPOSITIONS = [
    ['resolved', 'Resolved'],
    ['callback', 'Callback needed'],
    ['escalated', 'Escalated'],
    ['follow_up', 'Follow-up by email'],
    ['no_answer', 'No answer'],
    ['spam', 'Spam'],
  ];

  let token = null;
  let socket = null;
  let opened = false;
  let signedOut = true;
  /** The next hello follows a sign-in: stay away until the agent says available. */
  let freshSignIn = false;
  let backoff = 1000;
  let retryAt = 0;
  let retryTimer = null;
  /** The daemon said `shutdown`: either it is stopping, or this token signed in elsewhere. */
  let toldShutdown = false;
  /** The last message sent: an `error` frame belongs to it (the protocol has no request id). */
  let lastSent = null;
  let selected = null;
  const offers = new Map();
  const contacts = new Map();
  const queuesSeen = new Set(['billing', 'sales', 'support', 'vip']);

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      notice('Not connected: that was not sent. Reconnecting…', true);
      return false;
    }
    lastSent = message;
    socket.send(JSON.stringify(message));
    return true;
  }

  function notice(text, isError) {
    const node = $('notice');
    node.textContent = text;
    node.className = isError ? 'error-text' : 'muted';
  }

  // --- connection ------------------------------------------------------------------------

  function signIn(newToken) {
    token = newToken;
    sessionStorage.setItem(TOKEN_KEY, token);
    signedOut = false;
    freshSignIn = true;
    $('sign-in-error').textContent = '';
    connect();
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/v1/agent/ws?token=${encodeURIComponent(token)}`;
    opened = false;
    toldShutdown = false;
    const ws = new WebSocket(url);
    socket = ws;
    ws.addEventListener('open', () => { opened = true; });
    ws.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      handle(frame);
    });
    ws.addEventListener('close', () => { if (socket === ws) dropped(); });
  }

  async function dropped() {
    const wasOpen = opened;
    socket = null;
    if (signedOut) return;
    for (const id of [...offers.keys()]) removeOffer(id);
    if (toldShutdown && await ready()) {
      // The daemon runs on, so another window took over this agent's session (the newer
      // connection wins). Reconnecting would take it back, and that window would do the same.
      setState('offline', null, true);
      const banner = $('connection');
      banner.hidden = false;
      banner.replaceChildren('This desk was opened in another window. ',
        el('button', { type: 'button', onclick: () => connect() }, 'Use it here'));
      return;
    }
    if (!wasOpen) {
      // Refused before the upgrade: a wrong token (401) if the daemon answers at all.
      const up = await fetch('/healthz', { cache: 'no-store' }).then((r) => r.ok).catch(() => false);
      if (up) {
        signOut('The daemon refused this token. Check it and sign in again.');
        return;
      }
    }
    setState('offline', null, true);
    const delay = Math.min(backoff, 30000) * (0.75 + Math.random() / 2);
    backoff = Math.min(backoff * 2, 30000);
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    showConnection();
  }

  /** True when the daemon answers /readyz: up, and not shutting down. */
  function ready() {
    return fetch('/readyz', { cache: 'no-store' }).then((r) => r.ok).catch(() => false);
  }

  function showConnection() {
    const banner = $('connection');
    if (!retryTimer && !socket) return; // Stopped on purpose (taken over elsewhere).
    if (socket && opened) { banner.hidden = true; return; }
    if (signedOut) { banner.hidden = true; return; }
    const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    banner.hidden = false;
    banner.textContent = retryTimer
      ? `Offline: the connection to the daemon is lost. Reconnecting in ${left} s…`
      : 'Offline: connecting…';
  }

  function signOut(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'set_state', state: 'offline' }));
    }
    signedOut = true;
    const ws = socket;
    socket = null;
    if (ws) ws.close();
    clearTimeout(retryTimer);
    retryTimer = null;
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of [...offers.keys()]) removeOffer(id);
    for (const id of [...contacts.keys()]) closeTab(id);
    $('desk').hidden = true;
    $('sign-in').hidden = false;
    $('connection').hidden = true;
    $('who').textContent = '';
    setState('offline', null);
    $('state-pill').textContent = 'signed out';
    $('sign-in-error').textContent = message || '';
    $('token').focus();
  }

  // --- frames from the daemon --------------------------------------------------------------

  function handle(frame) {
    switch (frame.type) {
      case 'hello': return hello(frame);
      case 'offer': return addOffer(frame);
      case 'offer_revoked': {
        const why = { expired: 'not answered in time', contact_left: 'the customer left',
          agent_unavailable: 'you are not available', transferred: 'it was transferred' }[frame.reason] || frame.reason;
        if (offers.has(frame.offer_id)) notice(`Offer ${frame.offer_id} withdrawn: ${why}.`);
        return removeOffer(frame.offer_id);
      }
      case 'assigned': return assigned(frame.contact);
      case 'state': return setState(frame.state, frame.reason);
      case 'sla_warning': {
        const c = contacts.get(frame.contact_id);
        if (c) {
          c.warned = true;
          notice(`SLA warning on contact ${frame.contact_id}: ${frame.kind.replace('_', ' ')} due in ${clock(frame.due_in_ms)}.`, true);
        }
        return;
      }
      case 'contact_ended': {
        const why = { cancelled: 'cancelled by a supervisor', abandoned: 'the customer gave up',
          transferred: 'transferred', requeued: 'returned to the queue', customer_left: 'the customer left' }[frame.reason] || frame.reason;
        return endContact(frame.contact_id, why);
      }
      case 'message': {
        const c = contacts.get(frame.contact_id);
        if (c) {
          c.typingUntil = 0;
          say(c, 'customer', customerName(c.contact.customer), frame.subject ? `${frame.subject}\n\n${frame.text}` : frame.text);
        }
        return;
      }
      case 'typing': {
        const c = contacts.get(frame.contact_id);
        if (c) c.typingUntil = Date.now() + 4000;
        return;
      }
      case 'reply_queued': {
        const c = contacts.get(frame.contact_id);
        if (c) {
          const text = c.pending.shift();
          if (text !== undefined) say(c, 'mine', 'You', text);
          if (c.contact.sla) c.contact.sla.responded = true;
        }
        return;
      }
      case 'error': return refused(frame);
      case 'shutdown':
        toldShutdown = true;
        return;
      default:
        return; // Frames added in later versions: ignored, as the protocol asks.
    }
  }

  function hello(frame) {
    backoff = 1000;
    $('sign-in').hidden = true;
    $('desk').hidden = false;
    $('connection').hidden = true;
    $('who').textContent = frame.name ? `${frame.name} (${frame.agent})` : frame.agent;
    const still = new Set(frame.assigned.map((c) => c.id));
    for (const [id, c] of contacts) {
      if (!still.has(id) && !c.ended) endContact(id, 'returned to the queue while you were offline');
    }
    for (const contact of frame.assigned) assigned(contact, true);
    setState(frame.state, null);
    if (freshSignIn) {
      freshSignIn = false;
      // Signing in is not being ready: offers start when the agent says so.
      if (frame.state === 'available' || frame.state === 'busy') {
        send({ type: 'set_state', state: 'away', reason: 'not ready' });
      }
    }
  }

  function refused(frame) {
    const last = lastSent || {};
    const text = `Refused (${frame.code}): ${frame.message}`;
    if (last.type === 'reply') {
      const c = contacts.get(last.contact_id);
      if (c) {
        const lost = c.pending.pop();
        if (lost !== undefined && !c.reply.value) c.reply.value = lost;
        c.status.textContent = text;
      }
    } else if (last.type === 'complete' || last.type === 'transfer') {
      const c = contacts.get(last.contact_id);
      if (c) { c.finishing = false; refresh(c); c.status.textContent = text; }
    }
    notice(text, true);
  }

  // --- state -----------------------------------------------------------------------------

  let currentState = 'offline';

  function setState(state, reason, disconnected) {
    currentState = state;
    const pill = $('state-pill');
    const label = { available: 'Available', busy: 'Busy', wrap_up: 'Wrap-up', away: 'Away', offline: 'Offline' }[state] || state;
    pill.textContent = disconnected ? 'Offline (disconnected)' : (reason ? `${label}: ${reason}` : label);
    pill.className = `pill ${state}`;
    $('wrap-up').hidden = state !== 'wrap_up';
    $('go-available').disabled = state === 'available' || state === 'busy' || state === 'wrap_up';
  }

  // --- offers ----------------------------------------------------------------------------

  function addOffer(frame) {
    const contact = frame.contact;
    queuesSeen.add(contact.queue);
    removeOffer(frame.offer_id);
    const countdown = el('span', { class: 'countdown' });
    const accept = el('button', { type: 'button', onclick: () => send({ type: 'accept', offer_id: frame.offer_id }) }, 'Accept');
    const reject = el('button', {
      type: 'button', class: 'secondary',
      onclick: () => { if (send({ type: 'reject', offer_id: frame.offer_id })) removeOffer(frame.offer_id); },
    }, 'Reject');
    const node = el('article', { class: 'card offer', 'aria-label': `Offer ${frame.offer_id}` },
      el('h3', {}, `${contact.channel} · ${contact.queue}`),
      el('p', {}, el('strong', {}, customerName(contact.customer))),
      contact.subject ? el('p', {}, contact.subject) : null,
      el('p', { class: 'muted' }, contact.body),
      el('p', {}, 'Answer within ', countdown),
      el('div', { class: 'actions' }, accept, reject));
    const offer = { id: frame.offer_id, expiresAt: Date.now() + frame.expires_in_ms, node, countdown, accept };
    offers.set(frame.offer_id, offer);
    $('offers').append(node);
    $('no-offers').hidden = true;
    tickOffer(offer);
    // Offers are urgent: move the keyboard to them unless the agent is typing a reply.
    if (!(document.activeElement && document.activeElement.tagName === 'TEXTAREA')) accept.focus();
  }

  function tickOffer(offer) {
    const left = offer.expiresAt - Date.now();
    offer.countdown.textContent = left > 0 ? clock(left) : 'expired';
  }

  function removeOffer(id) {
    const offer = offers.get(id);
    if (!offer) return;
    offer.node.remove();
    offers.delete(id);
    $('no-offers').hidden = offers.size > 0;
  }

  // --- contacts --------------------------------------------------------------------------

  function assigned(contact, fromHello) {
    queuesSeen.add(contact.queue);
    removeOffer(contact.id);
    const known = contacts.get(contact.id);
    if (known && !known.ended) {
      known.contact = contact;
      refresh(known);
      return;
    }
    if (known) closeTab(contact.id);
    const c = { contact, ended: null, finishing: false, pending: [], typingUntil: 0, lastTyping: 0, warned: false };
    buildTab(c);
    contacts.set(contact.id, c);
    const first = contact.subject && contact.channel === 'email' ? `${contact.subject}\n\n${contact.body}` : contact.body;
    if (first) say(c, 'customer', customerName(contact.customer), first);
    select(contact.id, !fromHello);
    $('no-contacts').hidden = true;
  }

  function buildTab(c) {
    const id = c.contact.id;
    c.tab = el('button', {
      type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': `panel-${id}`,
      'aria-selected': 'false', tabIndex: -1,
      onclick: () => select(id, true),
      onkeydown: (event) => tabKeys(event, id),
    });
    c.sla = el('span', { class: 'sla' });
    c.heading = el('h3', { tabIndex: -1 });
    c.facts = el('dl', { class: 'contact-head' });
    c.conversation = el('ol', { class: 'conversation', 'aria-label': 'Conversation', 'aria-live': 'polite' });
    c.typing = el('p', { class: 'typing', 'aria-live': 'polite' });
    c.status = el('p', { class: 'error-text', role: 'alert' });
    c.reply = el('textarea', { id: `reply-${id}`, rows: 3, oninput: () => typed(c) });
    c.sendButton = el('button', { type: 'submit' }, 'Send reply');
    c.replyForm = el('form', { onsubmit: (event) => { event.preventDefault(); reply(c); } },
      el('label', { for: `reply-${id}` }, 'Reply to the customer'), c.reply,
      el('p', {}, c.sendButton, ' ', el('span', { class: 'muted' }, 'Ctrl+Enter sends')));
    c.reply.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); reply(c); }
    });
    const queues = el('datalist', { id: `queues-${id}` });
    c.transferQueue = el('input', { id: `transfer-${id}`, list: `queues-${id}`, size: 10, required: true,
      onfocus: () => queues.replaceChildren(...[...queuesSeen].sort().map((q) => el('option', { value: q }))) });
    c.transferButton = el('button', { type: 'submit', class: 'secondary' }, 'Transfer');
    c.disposition = el('select', { id: `disposition-${id}` },
      DISPOSITIONS.map(([value, label]) => el('option', { value }, label)));
    c.completeButton = el('button', { type: 'submit' }, 'Complete');
    c.closeButton = el('button', { type: 'button', class: 'secondary', onclick: () => closeTab(id) }, 'Close tab');
    c.tools = el('div', { class: 'tools' },
      el('form', { onsubmit: (event) => { event.preventDefault(); transfer(c); } },
        el('div', {}, el('label', { for: `transfer-${id}` }, 'Transfer to queue'), c.transferQueue, queues),
        c.transferButton),
      el('form', { onsubmit: (event) => { event.preventDefault(); complete(c); } },
        el('div', {}, el('label', { for: `disposition-${id}` }, 'Disposition'), c.disposition),
        c.completeButton));
    c.panel = el('section', { role: 'tabpanel', id: `panel-${id}`, 'aria-labelledby': `tab-${id}`, hidden: true },
      c.heading, c.facts, c.conversation, c.typing, c.replyForm, c.tools, c.status, c.closeButton);
    $('tabs').append(c.tab);
    $('panels').append(c.panel);
    refresh(c);
  }

  /** Arrow keys move between tabs, as the ARIA tabs pattern has it. */
  function tabKeys(event, id) {
    const ids = [...contacts.keys()];
    const at = ids.indexOf(id);
    let next = null;
    if (event.key === 'ArrowRight') next = ids[(at + 1) % ids.length];
    else if (event.key === 'ArrowLeft') next = ids[(at - 1 + ids.length) % ids.length];
    else if (event.key === 'Home') next = ids[0];
    else if (event.key === 'End') next = ids[ids.length - 1];
    if (next !== null) { event.preventDefault(); select(next, false); contacts.get(next).tab.focus(); }
  }

  function refresh(c) {
    const contact = c.contact;
    c.tab.textContent = `${contact.channel} · ${customerName(contact.customer)}${c.ended ? ' (ended)' : ''}`;
    c.tab.classList.toggle('ended', Boolean(c.ended));
    c.heading.textContent = `${contact.channel === 'email' ? 'Email' : contact.channel[0].toUpperCase() + contact.channel.slice(1)} ${contact.id}: ${contact.subject || customerName(contact.customer)}`;
    const fact = (term, value) => [el('dt', {}, term), el('dd', {}, value)];
    c.facts.replaceChildren(
      ...fact('Channel', contact.channel), ...fact('Queue', contact.queue),
      ...fact('Customer', customerName(contact.customer)),
      ...fact('Subject', contact.subject || '(none)'),
      ...fact('Priority', String(contact.priority)),
      ...fact('SLA', c.sla));
    const live = !c.ended && !c.finishing;
    const canReply = live && REPLY_CHANNELS.has(contact.channel);
    c.reply.disabled = !canReply;
    c.sendButton.disabled = !canReply;
    c.replyForm.hidden = !REPLY_CHANNELS.has(contact.channel);
    c.transferButton.disabled = !live;
    c.transferQueue.disabled = !live;
    c.completeButton.disabled = !live;
    c.disposition.disabled = !live;
    c.tools.hidden = Boolean(c.ended);
    c.closeButton.hidden = !c.ended;
    tickContact(c);
  }

  function tickContact(c) {
    const sla = c.contact.sla;
    if (c.ended) { c.sla.textContent = c.ended; c.sla.className = 'sla'; c.typing.textContent = ''; return; }
    c.typing.textContent = c.typingUntil > Date.now() ? `${customerName(c.contact.customer)} is typing…` : '';
    if (!sla) { c.sla.textContent = 'no deadline'; return; }
    let kind;
    let due;
    if (!sla.responded) { kind = 'First response'; due = sla.first_response_due; }
    else if (sla.resolution_due) { kind = 'Resolution'; due = sla.resolution_due; }
    else { c.sla.textContent = 'First response given'; c.sla.className = 'sla'; return; }
    const left = due - Date.now();
    c.sla.textContent = left >= 0 ? `${kind} due in ${clock(left)}` : `${kind} overdue by ${clock(-left)}`;
    c.sla.className = `sla${left < 0 ? ' breached' : (c.warned ? ' warning' : '')}`;
  }

  function select(id, focusPanel) {
    selected = id;
    for (const [other, c] of contacts) {
      const on = other === id;
      c.tab.setAttribute('aria-selected', on ? 'true' : 'false');
      c.tab.tabIndex = on ? 0 : -1;
      c.panel.hidden = !on;
    }
    const c = contacts.get(id);
    if (c && focusPanel) (c.reply.disabled ? c.heading : c.reply).focus();
  }

  function say(c, who, name, text) {
    c.conversation.append(el('li', { class: who === 'mine' ? 'mine' : (who === 'system' ? 'system' : '') },
      who === 'system' ? null : el('span', { class: 'who' }, name),
      el('span', { class: 'text' }, text)));
    c.conversation.scrollTop = c.conversation.scrollHeight;
  }

  function typed(c) {
    if (c.contact.channel !== 'chat' || c.ended) return;
    const now = Date.now();
    if (now - c.lastTyping < 2000) return;
    c.lastTyping = now;
    send({ type: 'typing', contact_id: c.contact.id });
  }

  function reply(c) {
    const text = c.reply.value.trim();
    if (!text || c.reply.disabled) return;
    if (send({ type: 'reply', contact_id: c.contact.id, text })) {
      c.pending.push(text);
      c.reply.value = '';
      c.status.textContent = '';
    }
  }

  function transfer(c) {
    const queue = c.transferQueue.value.trim();
    if (!queue) return;
    if (send({ type: 'transfer', contact_id: c.contact.id, queue })) {
      c.finishing = true;
      refresh(c);
    }
  }

  function complete(c) {
    const disposition = c.disposition.value;
    if (send({ type: 'complete', contact_id: c.contact.id, disposition })) {
      c.finishing = true;
      endContact(c.contact.id, `completed (${disposition})`);
      notice(`Contact ${c.contact.id} completed. Press Ready when your wrap-up is done.`);
    }
  }

  function endContact(id, why) {
    const c = contacts.get(id);
    if (!c) return;
    c.ended = why;
    say(c, 'system', '', `This contact ended: ${why}.`);
    refresh(c);
  }

  function closeTab(id) {
    const c = contacts.get(id);
    if (!c) return;
    c.tab.remove();
    c.panel.remove();
    contacts.delete(id);
    $('no-contacts').hidden = contacts.size > 0;
    if (selected === id) {
      const next = contacts.keys().next();
      if (!next.done) select(next.value, false);
      else selected = null;
    }
  }

  // --- wiring ----------------------------------------------------------------------------

  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token').value.trim();
    if (value) signIn(value);
  });
  $('go-available').addEventListener('click', () => send({ type: 'set_state', state: 'available' }));
  $('away-form').addEventListener('submit', (event) => {
    event.preventDefault();
    send({ type: 'set_state', state: 'away', reason: $('away-reason').value });
  });
  $('ready').addEventListener('click', () => send({ type: 'ready' }));
  $('sign-out').addEventListener('click', () => signOut(''));

  setInterval(() => {
    for (const offer of offers.values()) tickOffer(offer);
    for (const c of contacts.values()) tickContact(c);
    if (!signedOut) showConnection();
  }, 250);

  // A reload keeps the session: the daemon gives the same contacts back within its grace.
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    token = saved;
    signedOut = false;
    connect();
  } else {
    $('token').focus();
  }
})();
