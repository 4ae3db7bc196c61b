/**
 * The web UI's style sheet, served as /ui/style.css (a module rather than a .css
 * file so the TypeScript build carries it into dist with everything else).
 */
export const STYLE_SHEET = `
:root { --fg: #1d232a; --muted: #5b6570; --line: #d8dde3; --bg: #ffffff; --panel: #f5f7f9; --accent: #1f6feb;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 14px; line-height: 1.45; }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #14202e; }
header a { color: #e6edf3; text-decoration: none; }
header a.brand { font-weight: 700; font-size: 17px; }
header nav { display: flex; gap: 16px; }
header nav a:hover { text-decoration: underline; }
main { padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .digest { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.digest { word-break: break-all; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 8px 10px; overflow: auto; max-height: 480px;
  white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
.status { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; font-weight: 600; }
.status-succeeded, .status-PASSED, .status-SUCCESS, .status-ok { background: #dafbe1; color: var(--ok); }
.status-failed, .status-FAILED, .status-TIMEOUT, .status-bad { background: #ffebe9; color: var(--bad); }
.status-cached { background: #ddf4ff; color: #0969da; }
.status-queued, .status-executing, .status-FLAKY, .status-running { background: #fff8c5; color: var(--warn); }
form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; margin: 0 0 12px; }
form.filters label, form.login label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; padding: 3px 6px; }
.muted { color: var(--muted); }
.error { color: var(--bad); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 160px; background: var(--panel); }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; }
svg.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
svg.chart .axis { stroke: #8c959f; stroke-width: 1; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart text { fill: var(--muted); font-size: 11px; }
svg.chart .series { fill: none; stroke-width: 2; }
.bars { display: flex; gap: 2px; align-items: center; }
.bar { height: 12px; background: var(--accent); border-radius: 2px; }
form.login { display: flex; gap: 12px; align-items: end; }
footer { padding: 8px 24px 24px; color: var(--muted); font-size: 12px; }
`;
