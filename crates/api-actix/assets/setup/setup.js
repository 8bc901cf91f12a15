// The Domain Setup page. It takes the dashboard JWT from the URL fragment (which the
// browser never sends to a server), removes it from the address bar, and calls the
// API with it as `Authorization: Bearer`. No framework; data only ever reaches the
// page through textContent and attributes, never as HTML.
'use strict';

(function () {
  const API = '/api/v1/emails/domains/';
  const STATUS = { pending: 'Pending', verified: 'Verified', failing: 'Failing' };
  const CHECK = {
    unchecked: 'Not checked yet',
    ok: 'Published',
    missing: 'Missing',
    mismatch: 'Needs a fix',
    error: 'Lookup failed',
  };
  const state = { token: null, domain: null, detail: null, report: null, busy: false };

  const byId = (id) => document.getElementById(id);

  /** An element with a class and text, and optional attributes. */
  function el(tag, className, text, attributes) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The query parameter the DNS provider's redirect back carries (Domain Connect). */
  const RETURNED = 'domainconnect';
  const KEPT = 'domain-api-setup-token';

  /**
   * The token from `#token=…`, then gone from the address bar and history; or, back
   * from the DNS provider (`?domainconnect=applied`), the one this tab kept when it
   * left for it (sessionStorage, taken once).
   */
  function takeToken() {
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    if (token && token.trim()) return token.trim();
    if (!new URLSearchParams(location.search).has(RETURNED)) return null;
    let kept = null;
    try {
      kept = sessionStorage.getItem(KEPT);
      sessionStorage.removeItem(KEPT);
    } catch (e) {
      // storage refused: the page asks for a dashboard link as without a token
    }
    return kept && kept.trim() ? kept.trim() : null;
  }

  /** Back from the DNS provider: whether it applied the records (no `error`). */
  function returnedFromProvider() {
    const query = new URLSearchParams(location.search);
    if (!query.has(RETURNED)) return null;
    history.replaceState(null, '', location.pathname);
    return query.has('error') ? 'error' : 'applied';
  }

  /**
   * "Set up automatically at <provider>" when the domain's DNS provider supports the
   * service's Domain Connect template; nothing otherwise (404, or the live-check
   * budget spent). The token is kept for this tab to come back signed in.
   */
  async function offerConnect() {
    let found;
    try {
      found = await (await api('GET', '/connect')).json();
    } catch (e) {
      return;
    }
    const link = byId('connect-link');
    link.href = found.applyUrl;
    byId('connect-provider').textContent = found.provider;
    link.addEventListener('click', () => {
      try {
        sessionStorage.setItem(KEPT, state.token);
      } catch (e) {
        // without storage the customer comes back to a page that asks for a link
      }
    });
    byId('connect').hidden = false;
  }

  function domainFromPath() {
    try {
      return decodeURIComponent(location.pathname.replace(/^\/setup\//, '').replace(/\/$/, ''));
    } catch (e) {
      return '';
    }
  }

  async function errorMessage(response) {
    if (response.status === 401) {
      return 'Your link has expired or is not valid. Open Domain setup again from your dashboard to get a new link.';
    }
    if (response.status === 404) return 'This domain was not found in your organization.';
    const text = (await response.text()).trim();
    if (response.status >= 500) {
      let sentence = text;
      try {
        sentence = JSON.parse(text).error || text;
      } catch (e) {
        // a plain-text 503
      }
      return `${sentence} Please try again in a moment.`;
    }
    return text || `The request failed (HTTP ${response.status}).`;
  }

  /** Calls the API for this page's domain; resolves with the response when 2xx. */
  async function api(method, suffix, body) {
    const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json, text/plain' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + encodeURIComponent(state.domain) + suffix, init);
    } catch (e) {
      throw new ApiError(0, 'The service could not be reached. Check your connection and try again.');
    }
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response;
  }

  let announcing = null;

  function announce(text) {
    const live = byId('live');
    // Cleared first so that the same sentence twice is announced twice; a newer
    // sentence replaces one still waiting.
    window.clearTimeout(announcing);
    live.textContent = '';
    announcing = window.setTimeout(() => { live.textContent = text; }, 50);
  }

  function showNotice(text) {
    const notice = byId('notice');
    notice.textContent = text;
    notice.hidden = false;
  }

  function formatTime(iso, fallback) {
    if (!iso) return document.createTextNode(fallback);
    const time = el('time', null, new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }), { datetime: iso });
    return time;
  }

  const sameName = (a, b) => a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();

  /** What a record of the detail is: SPF, DKIM (with its key) or DMARC. */
  function describe(record) {
    const detail = state.detail;
    const key = detail.dkim.find((k) => sameName(k.record.name, record.name));
    if (key) {
      const which = { pending: 'new', active: 'current', retiring: 'previous', revoked: 'revoked' }[key.state];
      if (detail.dkim.length < 2 || !which) return { kind: 'DKIM', label: 'DKIM', what: 'DKIM record', key };
      return { kind: 'DKIM', label: `DKIM, ${which} key`, what: `DKIM record (${which} key)`, key };
    }
    if (sameName(record.name, detail.domain)) return { kind: 'SPF', label: 'SPF', what: 'SPF record' };
    if (sameName(record.name, `_dmarc.${detail.domain}`)) return { kind: 'DMARC', label: 'DMARC', what: 'DMARC record' };
    return { kind: 'TXT', label: 'TXT', what: 'TXT record' };
  }

  /**
   * The last check's report: the one "Check now" made on this page, else the last
   * check kept with the domain (a background check's, or an earlier visit's), so the
   * rows always agree with the status the domain got from that check.
   */
  const lastReport = () => state.report || state.detail.lastCheck || null;

  /** The check of this record in the last report, if it has one. */
  function checkOf(info, record) {
    const report = lastReport();
    if (!report) return null;
    return report.records.find((r) => r.type === info.kind && sameName(r.name, record.name)) || null;
  }

  /** The row's badge and reason: the live check, or what the key's state means. */
  function rowStatus(info, check) {
    const key = info.key;
    if (key && key.state === 'pending') {
      // A check since the key was made looked for it (one that found it would have
      // made it active).
      const kept = state.detail.lastCheck;
      const looked = state.report || (kept && new Date(kept.checkedAt) >= new Date(key.createdAt));
      return looked
        ? { status: 'missing', text: 'Not seen yet', reason: 'This new key was not found in DNS yet. Publish it next to the current key; it becomes active at the first check that finds it.' }
        : { status: 'unchecked', text: CHECK.unchecked, reason: 'A key rotation is in progress: publish this new key next to the current one. It becomes active at the first check that finds it.' };
    }
    if (key && key.state === 'retiring') {
      return { status: 'info', text: 'Keep published', reason: 'The previous key: keep it published until it is revoked, so mail it signed still verifies.' };
    }
    if (key && key.state === 'revoked') {
      return key.safeToRemove
        ? { status: 'info', text: 'Safe to remove', reason: 'This key is revoked and you can now delete its record.' }
        : { status: 'info', text: 'Revoked', reason: 'Replace the old key at this name with this value; you can delete it once it is marked safe to remove.' };
    }
    if (!check) return { status: 'unchecked', text: CHECK.unchecked, reason: null };
    return { status: check.status, text: CHECK[check.status] || check.status, reason: check.reason || null };
  }

  /**
   * A copy button whose name says what it copies: the visible `label` ("Copy")
   * followed by `target` ("value of the SPF record") for screen readers.
   */
  function copyButton(text, target, label, spoken) {
    const button = el('button', 'copy', null, { type: 'button' });
    const visible = el('span', 'copy-label', label || 'Copy');
    button.append(visible, el('span', 'visually-hidden', ` ${target}`));
    button.addEventListener('click', () => copy(text, spoken || target, visible));
    return button;
  }

  function legacyCopy(text) {
    const area = el('textarea', 'offscreen', null, { readonly: '', 'aria-hidden': 'true' });
    area.value = text;
    const focused = document.activeElement;
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch (e) {
      copied = false;
    }
    area.remove();
    if (focused) focused.focus();
    return copied;
  }

  async function copy(text, what, label) {
    let copied = true;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      copied = legacyCopy(text);
    }
    if (!copied) {
      announce(`Could not copy the ${what}; select it and copy it by hand.`);
      return;
    }
    const original = label.textContent;
    label.textContent = 'Copied';
    window.setTimeout(() => { label.textContent = original; }, 2000);
    announce(`Copied the ${what} to the clipboard.`);
  }

  function field(name, ...content) {
    const wrapper = el('div', 'field');
    const value = el('dd');
    value.append(...content);
    wrapper.append(el('dt', null, name), value);
    return wrapper;
  }

  function valueLine(text, className) {
    return el('code', className || 'value', text);
  }

  function listOf(tag, className, values) {
    const list = el(tag, className);
    for (const value of values) {
      const item = el('li');
      item.append(valueLine(value));
      list.append(item);
    }
    return list;
  }

  /** SPF: the merged record when the domain has one already; DMARC: keep theirs. */
  function changeSet(info, check) {
    if (!check || !check.action) return null;
    if (info.kind === 'SPF' && check.action === 'replace') {
      const box = el('div', 'changeset', null, { 'data-changeset': 'spf' });
      box.append(el('h4', null, 'Your domain already has an SPF record'));
      box.append(listOf('ul', 'plain', check.existing || []));
      box.append(el('p', null, 'A domain may have only one SPF record. Replace it with this merged record, which keeps its servers and adds ours:'));
      const merged = el('div', 'copy-row');
      merged.append(valueLine(check.suggestedValue, 'value merged'), copyButton(check.suggestedValue, 'merged value for the SPF record', 'Copy', 'merged SPF value'));
      box.append(merged);
      if (typeof check.lookups === 'number') box.append(el('p', 'muted', `It needs ${check.lookups} of the 10 DNS lookups receivers allow.`));
      if (check.warning) box.append(el('p', 'warning', check.warning));
      return box;
    }
    if (info.kind === 'DMARC' && check.action === 'keep' && (check.existing || []).length) {
      const box = el('div', 'changeset', null, { 'data-changeset': 'dmarc' });
      box.append(el('p', null, 'Your domain already has a DMARC record. Keep it and do not add a second one:'));
      box.append(valueLine(check.suggestedValue));
      return box;
    }
    if (check.warning) return el('p', 'warning', check.warning);
    return null;
  }

  function recordItem(record) {
    const info = describe(record);
    const check = info.key && info.key.state !== 'active' ? null : checkOf(info, record);
    const status = rowStatus(info, check);
    const item = el('li', 'record card', null, { 'data-record-name': record.name, 'data-kind': info.kind });
    const head = el('div', 'card-head');
    const title = el('h3', null, info.label);
    title.append(el('span', 'type', record.type));
    head.append(title, el('span', 'badge', status.text, { 'data-status': status.status }));
    item.append(head);
    const reason = el('p', 'reason', status.reason);
    reason.hidden = !status.reason;
    item.append(reason);

    const what = info.what;
    const fields = el('dl', 'fields');
    const host = el('div', 'copy-row');
    host.append(valueLine(record.host, 'host'), copyButton(record.host, `host of the ${what}`));
    const value = el('div', 'copy-row');
    value.append(valueLine(record.value), copyButton(record.value, `value of the ${what}`));
    fields.append(field('Host', host), field('Full name', valueLine(record.name, 'name')), field('TTL (seconds)', valueLine(String(record.ttl), 'ttl')), field('Value', value));
    if (record.strings.length > 1) {
      const list = listOf('ol', 'strings', record.strings);
      const quoted = record.strings.map((s) => `"${s}"`).join(' ');
      fields.append(field(`As ${record.strings.length} strings of at most 255 characters`, list, copyButton(quoted, `of the ${what}`, 'Copy quoted strings', `${what} as quoted strings`)));
    } else {
      fields.append(field('Strings', el('span', 'muted', 'One string: the value fits in 255 characters.')));
    }
    item.append(fields);
    const extra = changeSet(info, check);
    if (extra) item.append(extra);
    return item;
  }

  /** The MX record of inbound mail as fields: host, full name, priority, value. */
  function mxFields(mx) {
    const what = 'MX record for inbound mail';
    const host = el('div', 'copy-row');
    host.append(valueLine(mx.host, 'host'), copyButton(mx.host, `host of the ${what}`));
    const value = el('div', 'copy-row');
    value.append(valueLine(mx.value), copyButton(mx.value, `value of the ${what}`));
    return [field('Host', host), field('Full name', valueLine(mx.name, 'name')),
      field('Priority', valueLine(String(mx.priority), 'priority')), field('Value', value)];
  }

  /** The inbound MX as a row of the records, once inbound is on. */
  function mxItem(mx) {
    const report = lastReport();
    const inbound = report && report.inbound;
    const status = inbound
      ? { status: inbound.status, text: CHECK[inbound.status] || inbound.status, reason: inbound.reason || null }
      : { status: 'unchecked', text: CHECK.unchecked, reason: null };
    const item = el('li', 'record card', null, { 'data-record-name': mx.name, 'data-kind': 'MX' });
    const head = el('div', 'card-head');
    const title = el('h3', null, 'Inbound mail');
    title.append(el('span', 'type', 'MX'));
    head.append(title, el('span', 'badge', status.text, { 'data-status': status.status }));
    item.append(head);
    const reason = el('p', 'reason', status.reason);
    reason.hidden = !status.reason;
    item.append(reason);
    const fields = el('dl', 'fields');
    fields.append(...mxFields(mx));
    item.append(fields);
    return item;
  }

  /** When the last check ran and what it found, shown next to the status. */
  function renderLastCheck() {
    const line = byId('check-summary');
    const kept = !state.report && state.detail.lastCheck;
    if (!kept) return;
    const when = formatTime(state.detail.lastCheck.checkedAt, '');
    line.replaceChildren(document.createTextNode('Last check, '), when, document.createTextNode(`: ${summary(state.detail.lastCheck).replace(/^Checked: /, '')}`));
    line.hidden = false;
  }

  function renderStatus() {
    const detail = state.detail;
    const badge = byId('domain-status');
    badge.textContent = STATUS[detail.status] || detail.status;
    badge.dataset.status = detail.status;
    byId('domain-name').textContent = detail.unicode && detail.unicode !== detail.domain ? `${detail.unicode} (${detail.domain})` : detail.domain;
    byId('last-checked').replaceChildren(formatTime(detail.lastCheckedAt, 'Not checked yet'));
    byId('next-check').replaceChildren(formatTime(detail.nextCheckAt, 'None scheduled'));
    const pending = detail.dkim.find((k) => k.state === 'pending');
    const rotation = byId('rotation');
    rotation.hidden = !pending;
    if (pending) {
      rotation.textContent = `A DKIM key rotation is in progress. Publish the new key (selector ${pending.selector}) next to the current one; it becomes active at the first check that finds it.`;
    }
  }

  function renderInbound() {
    const enabled = state.detail.inboundEnabled;
    const toggle = byId('inbound');
    toggle.setAttribute('aria-checked', String(enabled));
    let text = enabled ? 'On' : 'Off';
    if (state.detail.inboundMx) byId('inbound-mx').replaceChildren(...mxFields(state.detail.inboundMx));
    const report = lastReport();
    if (report && report.inbound) {
      const inbound = report.inbound;
      text += inbound.mxReady ? ' · MX record found' : ` · ${inbound.reason || 'No MX record for our inbound server found.'}`;
    }
    byId('inbound-state').textContent = text;
  }

  /** Which zone the hosts are relative to, and how it was found. */
  function renderZone() {
    const { zone, zoneSource } = state.detail;
    const line = byId('records-zone');
    line.replaceChildren(
      'Publish them in the zone ', el('strong', null, zone, { 'data-zone': zone }),
      `: each host is relative to it (@ is ${zone} itself).`,
    );
    if (zoneSource !== 'soa') {
      line.append(` ${zone} is your registrable domain; the zone has not been confirmed by a DNS lookup yet — "Check now" looks it up. If your DNS provider manages a zone of its own for a subdomain, publish there with the host relative to that zone.`);
    }
  }

  function render() {
    document.title = `Domain setup · ${state.detail.domain}`;
    byId('title').textContent = `Set up ${state.detail.unicode || state.detail.domain}`;
    renderStatus();
    renderZone();
    const items = state.detail.records.map(recordItem);
    if (state.detail.inboundEnabled && state.detail.inboundMx) items.push(mxItem(state.detail.inboundMx));
    byId('records').replaceChildren(...items);
    renderInbound();
    renderLastCheck();
  }

  function summary(report) {
    const total = report.records.length;
    const ok = report.records.filter((r) => r.status === 'ok').length;
    if (ok === total) return `Checked: all ${total} records are published correctly.`;
    return `Checked: ${ok} of ${total} records are published correctly. See each record below for what to fix.`;
  }

  /** Runs `work` with `button` marked busy; one action at a time. */
  async function busy(button, busyText, work) {
    if (state.busy) return;
    state.busy = true;
    const label = button.querySelector('.switch-label') || button;
    const original = label.textContent;
    button.setAttribute('aria-disabled', 'true');
    if (busyText) label.textContent = busyText;
    try {
      await work();
    } catch (error) {
      failed(error);
    } finally {
      button.removeAttribute('aria-disabled');
      label.textContent = original;
      state.busy = false;
    }
  }

  function failed(error) {
    const text = error instanceof ApiError ? error.message : 'Something went wrong. Reload the page and try again.';
    showNotice(text);
    announce(text);
  }

  function checkNow() {
    return busy(byId('check'), 'Checking…', async () => {
      announce('Checking your DNS records…');
      const report = await (await api('POST', '/verify')).json();
      state.report = report;
      state.detail = await (await api('GET', '')).json();
      render();
      const text = summary(report);
      const line = byId('check-summary');
      line.textContent = text;
      line.hidden = false;
      announce(text);
    });
  }

  function inboundMessage(text, kind) {
    const message = byId('inbound-message');
    message.textContent = text;
    message.dataset.kind = kind;
    message.hidden = false;
    announce(text);
  }

  function toggleInbound() {
    return busy(byId('inbound'), null, async () => {
      const wanted = !state.detail.inboundEnabled;
      try {
        state.detail = await (await api('PATCH', '', { inbound: wanted })).json();
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) {
          inboundMessage(`${error.message}. Publish that MX record at your DNS provider, then turn inbound mail on again.`, 'error');
          return;
        }
        throw error;
      }
      render();
      inboundMessage(wanted ? 'Inbound mail is on.' : 'Inbound mail is off.', 'ok');
    });
  }

  function downloadZone() {
    return busy(byId('zone'), null, async () => {
      const text = await (await api('GET', '/zone')).text();
      const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
      const link = el('a', 'offscreen', null, { href: url, download: `${state.detail.domain}.zone` });
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce(`Downloaded ${state.detail.domain}.zone.`);
    });
  }

  async function start() {
    state.token = takeToken();
    const returned = returnedFromProvider();
    state.domain = domainFromPath();
    const loading = byId('loading');
    if (!state.token) {
      loading.hidden = true;
      showNotice('This page needs a link from your dashboard. Open Domain setup from the dashboard: its link signs you in for a short time.');
      return;
    }
    try {
      state.detail = await (await api('GET', '')).json();
    } catch (error) {
      loading.hidden = true;
      failed(error);
      return;
    }
    render();
    loading.hidden = true;
    byId('app').hidden = false;
    byId('check').addEventListener('click', checkNow);
    byId('inbound').addEventListener('click', toggleInbound);
    byId('zone').addEventListener('click', downloadZone);
    if (returned === 'applied') {
      await checkNow();
    } else {
      if (returned === 'error') showNotice('Your DNS provider did not add the records. Add them by hand below, or try again.');
      offerConnect();
    }
  }

  // A new link opened in this tab changes only the fragment, which loads nothing:
  // start again with its token.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
