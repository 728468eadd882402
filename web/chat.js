// Switchboard customer chat: a reference client of the chat websocket /v1/chat/ws (see
// docs/protocol.md, "Customer chat websocket"). Served at /chat, and framed into any site by
// /chat/widget.js. Built with textContent only: nothing an agent writes becomes markup.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const RESUME_KEY = 'switchboard.chat.resume';

  /** start → menu → waiting → talking → closed → rated; or after_hours → left. */
  let stage = 'start';
  let socket = null;
  let opened = false;
  let backoff = 1000;
  /** `close` and `rate` sent and not yet answered (by `closed`, `rated`): resent once if the
   * daemon's rate limit refuses a frame meanwhile, so ending and rating quickly loses neither. */
  const unanswered = new Map();
  let retryTimer = null;
  let startFrame = null;
  let agentName = 'The agent';
  let typingUntil = 0;
  let lastTyping = 0;

  function line(kind, who, text) {
    const item = document.createElement('li');
    item.className = kind;
    if (who) {
      const name = document.createElement('span');
      name.className = 'who';
      name.textContent = who;
      item.append(name);
    }
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    item.append(body);
    $('conversation').append(item);
    $('conversation').scrollTop = $('conversation').scrollHeight;
  }

  function status(text, isError) {
    $('status').textContent = text;
    $('status').className = isError ? 'error-text' : 'muted';
  }

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      status('Not connected: that was not sent. Reconnecting…', true);
      return false;
    }
    socket.send(JSON.stringify(message));
    if (message.type === 'close' || message.type === 'rate') unanswered.set(message.type, message);
    return true;
  }

  function show(part, on) { $(part).hidden = !on; }

  function connect(resume) {
    clearTimeout(retryTimer);
    retryTimer = null;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = resume ? `?resume=${encodeURIComponent(resume)}` : '';
    opened = false;
    const ws = new WebSocket(`${scheme}://${location.host}/v1/chat/ws${query}`);
    socket = ws;
    ws.addEventListener('open', () => {
      opened = true;
      backoff = 1000;
      show('connection', false);
      if (!resume && startFrame) ws.send(JSON.stringify(startFrame));
    });
    ws.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      handle(frame);
    });
    ws.addEventListener('close', () => { if (socket === ws) dropped(); });
  }

  function dropped() {
    socket = null;
    const token = sessionStorage.getItem(RESUME_KEY);
    if (stage === 'rated' || stage === 'left') return;
    if (!token) {
      // The chat never became a contact: nothing to resume, start again.
      stage = 'start';
      show('menu', false);
      show('start-form', true);
      status('We could not reach the chat service. Please try again.', true);
      return;
    }
    const delay = Math.min(backoff, 30000) * (0.75 + Math.random() / 2);
    backoff = Math.min(backoff * 2, 30000);
    $('connection').textContent = 'Connection lost. Reconnecting…';
    show('connection', true);
    retryTimer = setTimeout(() => connect(token), delay);
  }

  function handle(frame) {
    switch (frame.type) {
      case 'menu': return menu(frame);
      case 'welcome':
        sessionStorage.setItem(RESUME_KEY, frame.resume_token);
        if (stage === 'start' || stage === 'menu') stage = 'waiting';
        show('menu', false);
        show('talk', true);
        status('');
        $('message').focus();
        return;
      case 'queued': return queued(frame);
      case 'after_hours':
        stage = 'after_hours';
        show('menu', false);
        show('talk', true);
        line('system', null, frame.message);
        $('send').textContent = 'Leave this message';
        $('message').focus();
        return;
      case 'message_left':
        stage = 'left';
        line('system', null, `Thank you: your message is our case ${frame.contact_id}. We answer as soon as we open.`);
        show('message-form', false);
        return;
      case 'agent_joined':
        stage = 'talking';
        agentName = frame.name || 'An agent';
        show('position', false);
        line('system', null, `${agentName} joined the chat.`);
        return;
      case 'message':
        typingUntil = 0;
        line('', frame.from || agentName, frame.text);
        return;
      case 'typing':
        typingUntil = Date.now() + 4000;
        return;
      case 'closed': {
        unanswered.delete('close');
        stage = 'closed';
        const why = { customer_closed: 'You ended the chat.', agent_closed: `${agentName} ended the chat.`,
          abandoned: 'The chat ended.', cancelled: 'The chat was closed.', message_left: 'Your message was left.' }[frame.reason] || 'The chat ended.';
        line('system', null, why);
        show('message-form', false);
        show('position', false);
        typingUntil = 0;
        return;
      }
      case 'survey':
        $('survey-prompt').textContent = frame.prompt;
        show('rating-form', true);
        $('rating-form').querySelector('input[name=score]').focus();
        return;
      case 'rated':
        unanswered.delete('rate');
        stage = 'rated';
        sessionStorage.removeItem(RESUME_KEY);
        show('rating-form', false);
        status('Thank you for your rating!');
        if (socket) socket.close();
        return;
      case 'error':
        if (frame.code === 'unknown_resume_token') {
          sessionStorage.removeItem(RESUME_KEY);
          stage = 'left';
          status('This chat has ended. Reload the page to start a new one.', true);
          show('message-form', false);
          return;
        }
        if (frame.code === 'rate_limited' && unanswered.size > 0) {
          // Some frame was refused, not stored: what is still unanswered goes out again once
          // the daemon's one-second window has passed. A repeat the daemon had taken after all
          // is answered `closed` or `already_rated`, ignored below.
          const again = [...unanswered.values()];
          unanswered.clear();
          setTimeout(() => again.forEach(send), 1100);
          return;
        }
        if ((frame.code === 'already_rated' && stage === 'rated')
          || (frame.code === 'closed' && (stage === 'rated' || (stage === 'closed' && !unanswered.has('rate'))))) {
          return;
        }
        status(frame.message, true);
        return;
      default:
        return; // Frames added in later versions: ignored.
    }
  }

  function menu(frame) {
    stage = 'menu';
    show('start-form', false);
    $('menu-prompt').textContent = frame.prompt;
    const options = frame.options.map((option) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'secondary';
      button.textContent = option.label;
      button.addEventListener('click', () => {
        if (send({ type: 'choose', option: option.id })) {
          for (const b of $('menu-options').querySelectorAll('button')) b.disabled = true;
        }
      });
      return button;
    });
    $('menu-options').replaceChildren(...options);
    show('menu', true);
    if (options[0]) options[0].focus();
  }

  function queued(frame) {
    if (stage !== 'waiting') return;
    const n = frame.position;
    let text = n === 1 ? 'You are next in line' : `You are number ${n} in line`;
    const wait = frame.estimated_wait_seconds;
    if (wait !== undefined && wait !== null) {
      const minutes = Math.ceil(wait / 60);
      text += wait < 60 ? ', less than a minute.' : `, about ${minutes} minute${minutes === 1 ? '' : 's'}.`;
    } else {
      text += '.';
    }
    $('position').textContent = text;
    show('position', true);
  }

  $('start-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('name').value.trim();
    const email = $('email').value.trim();
    const text = $('first-message').value.trim();
    if (!name || !text) return;
    startFrame = { type: 'start', name, text };
    if (email) startFrame.email = email;
    show('start-form', false);
    line('mine', 'You', text);
    status('Connecting…');
    connect(null);
  });

  $('message-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('message').value.trim();
    if (!text) return;
    if (send({ type: 'message', text })) {
      line('mine', 'You', text);
      $('message').value = '';
    }
  });
  $('message').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      $('message-form').requestSubmit();
    }
  });
  $('message').addEventListener('input', () => {
    const now = Date.now();
    if (stage !== 'talking' || now - lastTyping < 2000) return;
    lastTyping = now;
    send({ type: 'typing' });
  });
  $('end-chat').addEventListener('click', () => send({ type: 'close' }));

  $('rating-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const picked = $('rating-form').querySelector('input[name=score]:checked');
    if (!picked) return;
    const rate = { type: 'rate', score: Number(picked.value) };
    const comment = $('comment').value.trim();
    if (comment) rate.comment = comment;
    send(rate);
  });

  setInterval(() => {
    $('typing').textContent = typingUntil > Date.now() ? `${agentName} is typing…` : '';
  }, 250);

  // A reload (or a flaky network) keeps the place in line within the daemon's resume grace.
  const saved = sessionStorage.getItem(RESUME_KEY);
  if (saved) {
    stage = 'waiting';
    show('start-form', false);
    show('talk', true);
    line('system', null, 'Reconnecting to your chat…');
    connect(saved);
  } else {
    $('name').focus();
  }
  if (new URLSearchParams(location.search).has('embedded')) document.body.classList.add('embedded');
})();
