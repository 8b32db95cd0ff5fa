// The live page: renders the state crmlink streams (/ui/api/events). Everything that comes
// from callers or amoCRM is put in the page as text (textContent), never parsed as HTML.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let offset = 0; // server clock minus ours, in ms

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, String(v));
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
    return e;
  }

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    const two = (n) => String(n).padStart(2, '0');
    return (h > 0 ? h + ':' + two(m) : String(m)) + ':' + two(sec);
  }

  function person(p) {
    if (!p) return '';
    return p.name ? p.name + ' (' + p.endpoint + ')' : p.endpoint || ('user ' + p.manager);
  }

  function routingText(c) {
    if (c.result === 'ROUTED') return 'routed' + (c.owner ? ' to ' + (c.owner.name || 'user ' + c.owner.manager) : '');
    if (c.result === 'FALLBACK') return 'fallback: ' + (c.reason || 'unknown');
    return c.direction === 'outgoing' ? 'outgoing' : 'not routed by crmlink';
  }

  function renderCalls(calls) {
    const body = $('calls');
    body.replaceChildren(...calls.map((c) => {
      const who = c.talking ? person(c.talking) : (c.ringing || []).map(person).join(', ');
      const arrow = c.direction === 'outgoing' ? '↗ ' : '';
      return el('tr', { 'data-call': c.id, 'data-state': c.state },
        el('td', { class: 'caller' }, arrow + (c.caller || 'withheld')),
        el('td', { class: 'contact' }, c.contact || ''),
        el('td', { class: 'state' }, c.state),
        el('td', { class: 'who' }, who),
        el('td', { class: 'routing' + (c.result === 'FALLBACK' ? ' fallback' : '') }, routingText(c)),
        el('td', { class: 'since', 'data-since': c.since, 'data-state-since': c.state_since }, ''));
    }));
    $('calls-empty').hidden = calls.length > 0;
    $('now-count').textContent = calls.length ? '(' + calls.length + ')' : '';
    tick();
  }

  function renderFigures(day, figures) {
    $('day').textContent = day || '';
    $('figures').replaceChildren(...(figures || []).map((f) => {
      const fb = Object.entries(f.fallbacks || {}).sort().map(([r, n]) => r + ': ' + n).join(', ');
      return el('tr', { 'data-manager': f.manager },
        el('td', { class: 'name' }, f.manager ? (f.name || 'user ' + f.manager) : 'nobody’s clients'),
        el('td', { class: 'num routed' }, f.routed),
        el('td', { class: 'num answered' }, f.answered),
        el('td', { class: 'num missed' }, f.missed),
        el('td', { class: 'fallbacks' }, fb),
        el('td', { class: 'num median' }, f.median_answer_ms ? (f.median_answer_ms / 1000).toFixed(1) + ' s' : ''),
        el('td', { class: 'num talk' }, clock(f.talk_ms)),
        el('td', { class: 'num chats' }, f.chats));
    }));
  }

  function renderHealth(h) {
    if (!h) return;
    const rows = [];
    for (const c of h.checks || []) {
      rows.push(el('dt', {}, c.name), el('dd', { class: c.ok ? 'ok' : 'bad', 'data-check': c.name }, c.detail || (c.ok ? 'ok' : 'down')));
    }
    if (h.amocrm) {
      const a = h.amocrm;
      rows.push(el('dt', {}, 'amoCRM requests/s'),
        el('dd', { id: 'amocrm-rate' }, (a.call + a.background).toFixed(1) + ' of ' + a.limit + ' (call path ' + a.call.toFixed(1) + ', background ' + a.background.toFixed(1) + ')'));
    }
    if (h.queue) {
      const q = h.queue;
      rows.push(el('dt', {}, 'Event backlog'),
        el('dd', { id: 'backlog' }, q.backlog + ' waiting' + (q.oldest_age_s ? ', oldest ' + clock(q.oldest_age_s * 1000) + ' old' : '')));
    }
    $('health-list').replaceChildren(...rows);
    const dead = h.dead || [];
    $('dead-count').textContent = '(' + (h.queue ? h.queue.dead : dead.length) + ')';
    $('dead').replaceChildren(...dead.map((d) => el('tr', { 'data-dead': d.id },
      el('td', {}, d.id), el('td', {}, d.kind), el('td', {}, d.first_seen ? new Date(d.first_seen).toLocaleString() : ''),
      el('td', { class: 'error' }, d.last_error || ''))));
  }

  function render(s) {
    if (s.now) offset = new Date(s.now).getTime() - Date.now();
    renderCalls(s.calls || []);
    renderFigures(s.day, s.today);
    renderHealth(s.health);
  }

  function tick() {
    const now = Date.now() + offset;
    for (const td of document.querySelectorAll('#calls td.since')) {
      const since = new Date(td.dataset.since).getTime(), st = new Date(td.dataset.stateSince).getTime();
      td.textContent = clock(now - since) + (st > since ? ' (' + clock(now - st) + ' ' + td.parentElement.dataset.state + ')' : '');
    }
  }
  setInterval(tick, 1000);

  function connect() {
    const es = new EventSource('/ui/api/events');
    es.addEventListener('state', (e) => {
      $('conn').dataset.state = 'live';
      $('conn').textContent = 'live';
      render(JSON.parse(e.data));
    });
    es.onerror = () => {
      $('conn').dataset.state = 'down';
      $('conn').textContent = 'reconnecting…';
    };
  }

  const replay = $('replay');
  if (replay) {
    replay.addEventListener('click', async () => {
      replay.disabled = true;
      try {
        const r = await fetch('/v1/queue/dead/replay', { method: 'POST', credentials: 'same-origin', headers: { 'X-CRMLINK-UI': '1' } });
        const body = await r.json();
        $('replay-result').textContent = r.ok ? 'replayed ' + body.replayed : 'refused: ' + (body.error || r.status);
      } catch (err) {
        $('replay-result').textContent = 'failed: ' + err;
      } finally {
        replay.disabled = false;
      }
    });
  }
  connect();
})();
