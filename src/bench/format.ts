/**
 * Number formatting shared by progress lines and reports: 12,345 / 123 / 12.3 / 1.23, "—" when missing.
 */
export function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs >= 1000 || Number.isInteger(n)) return Math.round(n).toLocaleString("en-US");
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** A ratio as "1.23×", "—" when missing or not finite. */
export function fmtRatio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? "—" : `${r.toFixed(2)}×`;
}
