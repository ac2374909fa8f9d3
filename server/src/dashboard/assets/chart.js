// Charts as plain SVG, drawn here in ~100 lines instead of shipping a chart library: the page needs two
// simple shapes (counts over time, a session's strip), must load offline within a small budget, and
// must expose each point's exact value (data-* attributes) so a test can hold it to /v1/stats/events.

import { h, fmtCount, fmtTime } from './ui.js';

const PALETTE = ['#1f4e8c', '#d1495b', '#2a9d8f', '#e9a03b', '#6a4c93', '#00798c', '#8d6a9f', '#5c8001',
  '#c05299', '#3d5a80'];

/** Colours by group name in alphabetical order: distinct, and the same while the set of groups is. */
export function colours(groups) {
  return new Map([...groups].sort().map((group, i) => [group, PALETTE[i % PALETTE.length]]));
}

const STEP_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };

/** The bucket an API interval gives an instant: truncated in UTC, as the server does. */
export function bucketStart(ms, interval) {
  return Math.floor(ms / STEP_MS[interval]) * STEP_MS[interval];
}

/** Every bucket start in `[from, to)`, including the empty ones the API leaves out. */
export function bucketStarts(from, to, interval) {
  const starts = [];
  const end = Date.parse(to);
  for (let t = bucketStart(Date.parse(from), interval); t < end; t += STEP_MS[interval]) starts.push(t);
  return starts;
}

/** A bucket width that keeps a range within a few hundred points. */
export function intervalFor(fromIso, toIso) {
  const span = Date.parse(toIso) - Date.parse(fromIso);
  if (span <= 6 * 3600e3) return 'minute';
  if (span <= 21 * 86400e3) return 'hour';
  return 'day';
}

/** `{group: Map(start ms -> count)}` from the API's buckets. */
export function seriesOf(buckets) {
  const series = new Map();
  for (const { start, group, count } of buckets) {
    if (!series.has(group)) series.set(group, new Map());
    series.get(group).set(Date.parse(start), count);
  }
  return series;
}

/** A round step for about four gridlines up to `value` (1, 2 or 5 times a power of ten). */
function niceStep(value) {
  const rough = Math.max(1, value / 4);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((m) => m >= rough);
}

/** A line per group over `starts`; every point is a circle carrying its group, start and count. */
export function lineChart({ starts, series, interval, label }) {
  const width = 960, height = 300, left = 56, right = 12, top = 12, bottom = 36;
  const highest = Math.max(1, ...[...series.values()].flatMap((m) => [...m.values()]));
  const step = niceStep(highest);
  const max = Math.ceil(highest / step) * step;
  const palette = colours(series.keys());
  const x = (i) => left + (starts.length < 2 ? 0.5 : i / (starts.length - 1)) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const yTicks = Array.from({ length: max / step + 1 }, (_, i) => i * step);
  const xTicks = starts.length ? [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (starts.length - 1))) : [];
  return h('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    yTicks.map((v) => h('g', {},
      h('line', { class: 'grid', x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      h('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtCount(Math.round(v))))),
    h('line', { class: 'axis', x1: left, x2: width - right, y1: y(0), y2: y(0) }),
    [...new Set(xTicks)].map((i) => h('text', { x: x(i), y: height - 12,
      'text-anchor': i === 0 ? 'start' : i === starts.length - 1 ? 'end' : 'middle' },
      tickLabel(starts[i], interval))),
    [...series.entries()].map(([group, counts]) => seriesPath(group, counts, { starts, x, y, colour: palette.get(group) })));
}

function seriesPath(group, counts, { starts, x, y, colour }) {
  const points = starts.map((t, i) => [x(i), y(counts.get(t) || 0)]);
  return h('g', { class: 'series', dataset: { group } },
    h('polyline', { points: points.map((p) => p.join(',')).join(' '), fill: 'none', stroke: colour,
      'stroke-width': 2, 'stroke-linejoin': 'round' }),
    starts.map((t, i) => {
      const count = counts.get(t) || 0;
      return h('circle', { class: 'point', cx: points[i][0], cy: points[i][1], r: count ? 3 : 1.5,
        fill: colour, dataset: { group, start: new Date(t).toISOString(), count: String(count) } },
      h('title', {}, `${group}: ${fmtCount(count)} at ${fmtTime(new Date(t).toISOString())}`));
    }));
}

function tickLabel(t, interval) {
  const iso = new Date(t).toISOString();
  return interval === 'day' ? iso.slice(0, 10) : interval === 'hour' ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/** A session's events as ticks across its duration, so that pauses show as empty stretches. */
export function sessionStrip(times) {
  const width = 960, height = 38, pad = 8;
  const first = times[0], last = times[times.length - 1];
  const span = Math.max(1, last - first);
  const x = (t) => pad + ((t - first) / span) * (width - 2 * pad);
  return h('svg', { class: 'strip', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${times.length} events from ${fmtTime(new Date(first).toISOString())} to ${fmtTime(new Date(last).toISOString())}` },
  h('line', { class: 'axis', x1: pad, x2: width - pad, y1: height / 2, y2: height / 2 }),
  times.map((t) => h('line', { x1: x(t), x2: x(t), y1: 6, y2: height - 6, stroke: PALETTE[0], 'stroke-width': 2 })));
}
