// Switchboard wallboard: queues and agents, live from GET /v1/wallboard/events (server-sent
// events, the same numbers as GET /v1/queues and /v1/agents). Colours: red where a queue
// misses its service-level target or its oldest contact has waited past the threshold,
// amber where contacts wait and no agent is available to take them.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'switchboard.wallboard.token';
  const STATES = [
    ['available', 'Available'], ['busy', 'Busy'], ['wrap_up', 'Wrap-up'], ['away', 'Away'], ['offline', 'Offline'],
  ];
  let source = null;

  function td(text, cls) {
    const cell = document.createElement('td');
    if (cls) cell.className = cls;
    cell.textContent = text;
    return cell;
  }

  function wait(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.floor(seconds);
    return s < 60 ? `${s}s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  const percent = (x) => `${Math.round(x * 100)}%`;

  function render(board) {
    let waiting = 0;
    const rows = board.queues.map((q) => {
      waiting += q.waiting;
      const row = document.createElement('tr');
      row.dataset.queue = q.queue;
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = q.queue;
      row.append(name);
      row.append(td(String(q.waiting), q.waiting > 0 && q.agents_available === 0 ? 'at-risk' : ''));
      const late = q.oldest_wait_seconds !== null && q.service_level_threshold_seconds !== null
        && q.oldest_wait_seconds > q.service_level_threshold_seconds;
      row.append(td(wait(q.oldest_wait_seconds), late ? 'breached' : ''));
      const sl = td(q.service_level === null ? '–' : percent(q.service_level),
        q.service_level === null ? '' : (q.service_level < q.service_level_target ? 'breached' : 'met'));
      const target = document.createElement('span');
      target.className = 'target';
      target.textContent = `target ${percent(q.service_level_target)} in ${q.service_level_threshold_seconds}s`;
      sl.append(target);
      row.append(sl);
      row.append(td(String(q.agents_available)));
      row.append(td(String(q.answered)));
      row.append(td(String(q.abandoned)));
      const r = q.ratings;
      row.append(td(r.count === 0 ? '–' : `${r.count} · ${r.average.toFixed(1)}★`));
      return row;
    });
    $('queues').replaceChildren(...rows);
    $('total-waiting').textContent = String(waiting);
    $('total-available').textContent = String(board.agents.filter((a) => a.state === 'available').length);
    $('total-ratings').textContent = String(board.ratings.count);
    $('total-rating-average').textContent = board.ratings.average === null ? '' : `average ${board.ratings.average.toFixed(1)} of 5`;

    const sections = STATES.map(([state, label]) => {
      const agents = board.agents.filter((a) => a.state === state);
      const section = document.createElement('section');
      section.dataset.state = state;
      const heading = document.createElement('h2');
      heading.textContent = label;
      const count = document.createElement('span');
      count.className = 'count';
      count.textContent = String(agents.length);
      const list = document.createElement('ul');
      for (const agent of agents) {
        const item = document.createElement('li');
        item.textContent = (agent.name || agent.id) + (agent.reason ? ` (${agent.reason})` : '');
        list.append(item);
      }
      section.append(heading, count, list);
      return section;
    });
    $('states').replaceChildren(...sections);
    const live = $('live');
    live.textContent = `live · ${new Date(board.at).toLocaleTimeString()}`;
    live.className = 'pill available';
  }

  async function start(token) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    let answer;
    try {
      answer = await fetch('/v1/wallboard', { headers, cache: 'no-store' });
    } catch {
      $('live').textContent = 'offline: retrying';
      setTimeout(() => start(token), 3000);
      return;
    }
    if (answer.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      $('board').hidden = true;
      $('token-form').hidden = false;
      $('token-error').textContent = token ? 'The daemon refused that token.' : '';
      $('live').textContent = 'admin token needed';
      $('admin-token').focus();
      return;
    }
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    $('token-form').hidden = true;
    $('board').hidden = false;
    if (answer.ok) render(await answer.json());
    // EventSource cannot send headers: the admin token goes in the query string.
    const query = token ? `?token=${encodeURIComponent(token)}` : '';
    if (source) source.close();
    source = new EventSource(`/v1/wallboard/events${query}`);
    source.addEventListener('wallboard', (event) => render(JSON.parse(event.data)));
    source.addEventListener('error', () => {
      // EventSource retries by itself; say that the numbers are stale meanwhile.
      const live = $('live');
      live.textContent = 'offline: reconnecting';
      live.className = 'pill offline';
    });
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('admin-token').value.trim();
    if (token) start(token);
  });

  start(new URLSearchParams(location.search).get('token') || sessionStorage.getItem(TOKEN_KEY));
})();
