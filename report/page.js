// The report page: reads the embedded data (fields without a value are left out) and draws it. Latency histograms are uPlot charts; the
// timeline is HTML elements, so every bar can take keyboard focus and be read out.
'use strict'
;(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent)
  const $ = (selector) => document.querySelector(selector)
  /** Invocations drawn in the list at once; the rest are reached by sorting. */
  const MAX_LISTED = 1000
  const HISTOGRAM_BINS = 30

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag)
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue
      if (name === 'text') node.textContent = value
      else if (name === 'class') node.className = value
      else node.setAttribute(name, value)
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child)
    return node
  }
  const ms = (value) => (value === null || value === undefined ? '–' : `${value} ms`)
  const plural = (n, word, words) => `${n} ${n === 1 ? word : words || `${word}s`}`
  const iso = (epoch) => (epoch === null ? '–' : new Date(epoch).toISOString())

  const totals = data.totals
  $('#headline').textContent = `${plural(data.invocations.length, 'invocation')}, ${plural(totals.calls, 'call')}, ` +
    `${plural(totals.errors, 'error')}, ${plural(totals.retries, 'retry', 'retries')}; latency p50 ${ms(totals.p50)}, p99 ${ms(totals.p99)}`

  // ---- Timeline ---------------------------------------------------------------------------------
  const byId = new Map(data.invocations.map((invocation) => [invocation.id, invocation]))
  let chosen = null
  const SORTS = {
    time: (a, b) => a.t0 - b.t0,
    duration: (a, b) => b.dur - a.dur || a.t0 - b.t0,
    errors: (a, b) => b.errors - a.errors || b.retries - a.retries || a.t0 - b.t0,
  }

  function callState(call) {
    return call.err ? 'error' : call.n > 1 ? 'retried' : 'ok'
  }

  function callSummary(call) {
    const parts = [`${call.sv}.${call.op}`, `${call.d} ms`]
    if (call.err) parts.push(`failed: ${[call.st, call.ex].filter((x) => x !== undefined).join(' ') || 'no response'}`)
    if (call.n > 1) parts.push(`${call.n} attempts`)
    if (call.th) parts.push('throttled')
    if (call.ph) parts.push(`${call.ph} phase`)
    return parts.join(', ')
  }

  function renderList() {
    const list = $('#invocations')
    const sorted = data.invocations.slice().sort(SORTS[$('#sort').value])
    const items = sorted.slice(0, MAX_LISTED).map((invocation) => {
      const marks = []
      if (invocation.cold) marks.push('❄ cold')
      if (invocation.phases.includes('init')) marks.push('init')
      const button = el('button', { type: 'button', 'data-id': invocation.id, 'aria-current': invocation === chosen ? 'true' : 'false' },
        el('span', { class: 'id', text: invocation.id }),
        el('span', { class: 'meta' },
          `${invocation.dur} ms, ${plural(invocation.calls.length, 'call')}`,
          invocation.errors ? el('span', { class: 'err-count', text: ` ✕ ${plural(invocation.errors, 'error')}` }) : null,
          invocation.retries ? ` ↻ ${plural(invocation.retries, 'retry', 'retries')}` : '',
          marks.length ? ` · ${marks.join(' · ')}` : ''))
      return el('li', {}, button)
    })
    list.replaceChildren(...items)
    $('#invocation-count').textContent = `${plural(data.invocations.length, 'invocation')}` +
      (data.invocations.length > MAX_LISTED ? ` (first ${MAX_LISTED} listed)` : '')
  }

  function showDetails(call) {
    const fields = [
      ['Call', `${call.sv}.${call.op}`],
      ['Start', `+${call.s} ms (${iso(chosen.t0 + call.s)})`],
      ['Latency', ms(call.d)],
      ['Status', call.st === undefined ? 'no response' : String(call.st)],
      ['Result', call.err ? `error${call.ex ? `: ${call.ex}` : ''}${call.mx ? ' (retries exhausted)' : ''}` : 'succeeded'],
      ['Message', call.msg],
      ['Attempts', `${call.n}${call.th ? ', throttled' : ''}` + (call.at.length ? `: ${call.at.map((a) =>
        `${a.d} ms ${a.st === undefined ? '' : a.st}${a.ex ? ` ${a.ex}` : ''}`.trim()).join('; ')}` : '')],
      ['Phase', call.ph],
      ['Region', call.rg],
    ].filter(([, value]) => value !== null && value !== undefined)
    const list = el('dl', {})
    for (const [name, value] of fields) list.append(el('dt', { text: name }), el('dd', { text: value }))
    $('#details').replaceChildren(list)
  }

  function choose(invocation) {
    chosen = invocation
    for (const button of document.querySelectorAll('#invocations button')) {
      button.setAttribute('aria-current', button.dataset.id === invocation.id ? 'true' : 'false')
    }
    const span = Math.max(1, invocation.dur)
    const pct = (value) => `${Math.min(100, Math.max(0, (value / span) * 100))}%`
    $('#invocation-title').textContent = `${invocation.id}${invocation.fn ? ` — ${invocation.fn}` : ''}: ` +
      `${invocation.dur} ms, ${plural(invocation.calls.length, 'call')}${invocation.cold ? ', cold start ❄' : ''}`
    const ticks = []
    for (let i = 0; i <= 4; i += 1) ticks.push(el('span', { style: `left:${i * 25}%`, text: `${Math.round((span * i) / 4)} ms` }))
    $('#axis').replaceChildren(...ticks)
    const rows = invocation.calls.map((call, index) => {
      const state = callState(call)
      // Shapes as well as colours: ✕ failed, ↻ retried (a failed call may have retried too).
      const mark = `${state === 'error' ? '✕' : ''}${call.n > 1 ? '↻' : ''}`
      const bar = el('button', {
        type: 'button',
        class: `bar ${state}`,
        style: `left:${pct(call.s)};width:${pct(call.d)}`,
        'aria-label': `${index + 1}. ${callSummary(call)}`,
        'data-state': state,
        'data-call': `${call.sv}.${call.op}`,
      })
      for (const attempt of call.at) {
        // Attempts are drawn relative to their call's bar.
        const left = call.d > 0 ? ((attempt.s - call.s) / call.d) * 100 : 0
        const width = call.d > 0 ? (attempt.d / call.d) * 100 : 100
        bar.append(el('span', {
          class: `attempt${attempt.bad ? ' bad' : ''}`,
          'data-attempt': attempt.bad ? 'failed' : 'ok',
          style: `left:${Math.max(0, Math.min(100, left))}%;width:${Math.max(0, Math.min(100, width))}%`,
        }))
      }
      bar.addEventListener('mouseenter', () => showDetails(call))
      bar.addEventListener('focus', () => showDetails(call))
      bar.addEventListener('click', () => showDetails(call))
      const label = el('span', { class: 'label', title: `${call.sv}.${call.op}` },
        call.ph === 'init' ? el('span', { class: 'phase init', text: 'init' }) : null,
        `${call.sv}.${call.op}`,
        mark ? el('span', { class: `mark ${state}`, 'aria-hidden': 'true', 'data-mark': mark, text: mark }) : null,
        call.th ? el('span', { class: 'mark retried', 'aria-hidden': 'true', 'data-mark': '‖', text: '‖' }) : null)
      return el('li', {}, label, el('span', { class: 'track' }, bar))
    })
    $('#bars').replaceChildren(...rows)
    $('#details').replaceChildren(el('p', { text: 'Hover over or focus a bar to see the call.' }))
  }

  $('#invocations').addEventListener('click', (event) => {
    const button = event.target.closest('button')
    if (button) choose(byId.get(button.dataset.id))
  })
  $('#sort').addEventListener('change', renderList)

  /** Chooses an invocation from the address (#invocation=ID), as the errors table links. */
  function chooseFromHash() {
    const match = /^#invocation=(.+)$/.exec(location.hash)
    const invocation = match && byId.get(decodeURIComponent(match[1]))
    if (invocation) {
      choose(invocation)
      $('#timeline').scrollIntoView()
    }
    return Boolean(invocation)
  }
  window.addEventListener('hashchange', chooseFromHash)

  // ---- Latency per API --------------------------------------------------------------------------
  let histogram = null
  function showHistogram(api) {
    const values = api.latencies
    const box = $('#histogram')
    if (values.length === 0) return
    const max = values[values.length - 1]
    const width = Math.max(1, Math.ceil((max + 1) / HISTOGRAM_BINS))
    const xs = []
    const counts = []
    for (let i = 0; i < HISTOGRAM_BINS; i += 1) {
      xs.push(i * width)
      counts.push(0)
    }
    for (const value of values) counts[Math.min(HISTOGRAM_BINS - 1, Math.floor(value / width))] += 1
    box.setAttribute('aria-label', `Latency histogram of ${api.service}.${api.api}: ${api.calls} calls, ` +
      `p50 ${api.p50} ms, p90 ${api.p90} ms, p99 ${api.p99} ms`)
    const markers = [['p50', api.p50, '#2f855a'], ['p90', api.p90, '#b7791f'], ['p99', api.p99, '#c53030']]
    const options = {
      title: `${api.service}.${api.api}: latency (ms), ${plural(api.calls, 'call')}`,
      width: Math.min(1100, box.clientWidth || 800),
      height: 240,
      scales: { x: { time: false } },
      axes: [{ label: 'latency (ms)' }, { label: 'calls' }],
      series: [{ label: 'from ms' }, { label: 'calls', fill: 'rgba(43,108,176,.35)', stroke: '#2b6cb0', paths: uPlot.paths.bars({ align: 1, size: [1, Infinity] }) }],
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx
          ctx.save()
          markers.forEach(([name, value, colour], index) => {
            if (value === null) return
            const x = u.valToPos(value, 'x', true)
            ctx.strokeStyle = colour
            ctx.setLineDash(name === 'p50' ? [] : name === 'p90' ? [6, 3] : [2, 2])
            ctx.lineWidth = 2
            ctx.beginPath()
            ctx.moveTo(x, u.bbox.top)
            ctx.lineTo(x, u.bbox.top + u.bbox.height)
            ctx.stroke()
            ctx.fillStyle = colour
            ctx.font = `${12 * devicePixelRatio}px sans-serif`
            // One line each, so equal percentiles do not print over each other.
            ctx.fillText(`${name} ${value}`, x + 4, u.bbox.top + 14 * (index + 1) * devicePixelRatio)
          })
          ctx.restore()
        }],
      },
    }
    if (histogram) histogram.destroy()
    histogram = new uPlot(options, [xs, counts], box)
  }

  const apiBody = $('#apis tbody')
  data.apis.forEach((api, index) => {
    const cells = [api.service, api.api, api.calls, api.errors, api.retries, api.p50, api.p90, api.p99, api.latencies[api.latencies.length - 1]]
    const row = el('tr', { tabindex: '0', 'aria-label': `${api.service}.${api.api}, show its histogram` },
      ...cells.map((value, column) => el('td', { class: column >= 2 ? 'n' : undefined, text: value === undefined || value === null ? '–' : String(value) })))
    const pick = () => {
      for (const other of apiBody.children) other.classList.remove('chosen')
      row.classList.add('chosen')
      showHistogram(api)
    }
    row.addEventListener('click', pick)
    row.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault()
        pick()
      }
    })
    apiBody.append(row)
    if (index === 0) pick()
  })

  // ---- Errors and retries -----------------------------------------------------------------------
  const problemBody = $('#problem-table tbody')
  if (data.problems.length === 0) problemBody.append(el('tr', {}, el('td', { colspan: '5', text: 'No call failed or retried.' })))
  for (const problem of data.problems) {
    const links = el('td', {})
    problem.invocations.forEach((id, index) => {
      if (index > 0) links.append(', ')
      links.append(el('a', { href: `#invocation=${encodeURIComponent(id)}`, text: id }))
    })
    if (problem.invocationCount > problem.invocations.length) links.append(` and ${problem.invocationCount - problem.invocations.length} more`)
    problemBody.append(el('tr', { 'data-problem': problem.problem },
      el('td', { text: problem.service }), el('td', { text: problem.api }), el('td', { text: problem.problem }),
      el('td', { class: 'n', text: String(problem.calls) }), links))
  }

  // ---- Policy ------------------------------------------------------------------------------------
  const policy = data.policy
  const pre = $('#policy-text')
  if (policy.text === null) {
    pre.textContent = 'The recordings hold no call that needs a known IAM action.'
    $('#copy').disabled = true
  } else {
    // The text stays exactly as printed; only each "*" (a whole resource or inside an ARN) is wrapped in a <mark>.
    const pieces = policy.text.split('*')
    pieces.forEach((piece, index) => {
      if (index > 0) pre.append(el('mark', { class: 'star', title: 'a wildcard: see the reasons below', text: '*' }))
      pre.append(piece)
    })
  }
  for (const line of policy.report) $('#policy-notes').append(el('li', { text: line }))
  $('#copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(policy.text)
      $('#copied').textContent = 'Copied.'
    } catch {
      // No clipboard permission (a file:// page may have none): select the text for Ctrl-C instead.
      getSelection().selectAllChildren(pre)
      $('#copied').textContent = 'Selected: press Ctrl-C (⌘-C) to copy.'
    }
  })

  // ---- Provenance --------------------------------------------------------------------------------
  const p = data.provenance
  const facts = [
    ['Files', p.files.map((f) => `${f.file} (${f.format}, ${plural(f.records, 'record')}${f.skipped ? `, ${f.skipped} skipped` : ''})`).join('; ')],
    ['Time range', `${iso(p.from)} – ${iso(p.to)}`],
    ['Functions', p.functions.length ? p.functions.map((f) => `${f.name} (${plural(f.records, 'record')})`).join('; ') : 'none named'],
    ['Records', Object.entries(p.types).map(([type, count]) => `${count} ${type}`).join(', ') || 'none'],
    ['Not understood', p.notUnderstood.length ? p.notUnderstood.join('; ') : 'nothing'],
  ]
  for (const [name, value] of facts) $('#provenance-list').append(el('dt', { text: name }), el('dd', { text: value }))

  renderList()
  if (!chooseFromHash() && data.invocations.length > 0) {
    // The slowest invocation first: where the time went is the first question.
    choose(data.invocations.slice().sort(SORTS.duration)[0])
  }
  document.documentElement.dataset.ready = 'true'
})()
