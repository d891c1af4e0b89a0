/**
 * Tiny dependency-free SVG charts for the HTML report: a log-log line chart and a horizontal bar chart.
 */
import { fmt } from "../format.js";

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  /** Draw point markers (default true). */
  markers?: boolean;
  /** [x, y, filled]; hollow markers mark points that did not meet the bar (e.g. unsustained steps). */
  points: [number, number, boolean][];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

export interface Bar {
  label: string;
  value: number;
  color: string;
}

const W = 720;
const H = 340;
const M = { left: 70, right: 200, top: 34, bottom: 46 };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Tick values 1-2-5 per decade between lo and hi (positive). */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  const span = Math.log10(hi) - Math.log10(lo);
  const steps = span > 4 ? [1] : span > 2 ? [1, 3] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

function extent(values: number[]): [number, number] {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length === 0) return [1, 10];
  let lo = 10 ** Math.floor(Math.log10(Math.min(...pos)));
  let hi = 10 ** Math.ceil(Math.log10(Math.max(...pos)));
  if (hi <= lo) hi = lo * 10;
  if (hi / lo < 10) lo = hi / 10;
  return [lo, hi];
}

export function lineChart(o: LineChartOptions): string {
  const all = o.series.flatMap((s) => s.points);
  const [x0, x1] = extent(all.map((p) => p[0]));
  const [y0, y1] = extent(all.map((p) => p[1]));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (v: number) =>
    M.left + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * pw;
  const sy = (v: number) =>
    M.top + ph - ((Math.log10(Math.max(v, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">`,
    `<text x="${M.left}" y="20" class="title">${escapeXml(o.title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" class="plot"/>`,
  ];
  for (const t of logTicks(x0, x1)) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" class="grid"/>`);
    parts.push(`<text x="${x}" y="${M.top + ph + 16}" class="tick" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of logTicks(y0, y1)) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${M.left - 6}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 8}" class="axis" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" class="axis" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  for (const [i, s] of o.series.entries()) {
    const pts = s.points.filter((p) => p[1] > 0 && Number.isFinite(p[1]));
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : "";
    if (pts.length > 1) {
      const d = pts
        .map((p, j) => `${j === 0 ? "M" : "L"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
        .join("");
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    }
    for (const p of s.markers === false ? [] : pts) {
      const fill = p[2] ? s.color : "#fff";
      parts.push(
        `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3.5" fill="${fill}" stroke="${s.color}">` +
          `<title>${escapeXml(`${s.name}: ${fmt(p[0])} → ${fmt(p[1])}`)}</title></circle>`,
      );
    }
    const ly = M.top + 10 + i * 18;
    const lx = M.left + pw + 14;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
    );
    parts.push(
      `<text x="${lx + 28}" y="${ly}" class="legend" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

export function barChart(title: string, unit: string, bars: Bar[]): string {
  const rowH = 26;
  const left = 230;
  const width = 720;
  const height = 40 + bars.length * rowH + 10;
  const max = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const pw = width - left - 110;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">`,
    `<text x="10" y="20" class="title">${escapeXml(title)}</text>`,
  ];
  for (const [i, b] of bars.entries()) {
    const y = 34 + i * rowH;
    const w = Number.isFinite(b.value) ? Math.max(1, (b.value / max) * pw) : 0;
    parts.push(
      `<text x="${left - 8}" y="${y + 9}" class="legend" text-anchor="end" dominant-baseline="middle">${escapeXml(b.label)}</text>`,
    );
    parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${b.color}"/>`);
    parts.push(
      `<text x="${left + w + 6}" y="${y + 9}" class="tick" dominant-baseline="middle">${fmt(b.value)} ${escapeXml(unit)}</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}
