// The flow map: a Node Graph panel drawn from the panel's data frames by the rules Grafana's
// Node Graph panel reads them with (Grafana does not publish that panel as a package, so the
// drawing is ours; the frames are what Grafana's transformers and field config made):
//  - frames taken: named or refId'd "nodes"/"edges", or with a field named "id";
//    a frame with a field named "source" holds edges, any other nodes; the first of each counts;
//  - fields: id, title, subtitle, mainstat, secondarystat matched case-insensitively,
//    arc__* and detail__* by prefix; the panel options' units replace the fields' units;
//  - a stat reads as value.toFixed(decimals || 2) + " " + unit (the unit id, unformatted);
//  - arcs: a section >= 1 draws the whole ring in its colour, sections other than 0 are drawn
//    one after another, none draws a grey ring;
//  - no id field, or an edge whose source or target is not a node, is an error (Grafana's
//    panel fails on both).
// Layout (ours; Grafana's panel lays out by forces or layers and zooms): see layout() below.
import React from "react";

const R = 40;
const lower = (f) => f.name.toLowerCase();

export function statToString(field, i) {
  if (!field) return "";
  const v = field.values[i];
  if (typeof v === "string") return v;
  if (typeof v !== "number" || !Number.isFinite(v)) return "";
  const decimals = field.config.decimals || 2;
  return v.toFixed(decimals) + (field.config.unit ? " " + field.config.unit : "");
}

function graphFrames(frames) {
  return frames.filter(
    (f) =>
      f.meta?.preferredVisualisationType === "nodeGraph" ||
      ["nodes", "edges"].includes(f.name) ||
      ["nodes", "edges"].includes(f.refId) ||
      f.fields.some((x) => x.name === "id"),
  );
}

function withUnit(field, unit) {
  if (field && unit) field.config = { ...field.config, unit };
}

// Nodes and edges as the panel would draw them, or an exception the panel would show.
export function readGraph(frames, options) {
  const nodesFrames = [];
  const edgesFrames = [];
  for (const f of graphFrames(frames)) {
    (f.fields.some((x) => x.name === "source") || f.name === "edges" ? edgesFrames : nodesFrames).push(f);
  }
  const nf = nodesFrames[0];
  const ef = edgesFrames[0];
  if (!nf && !ef) return { nodes: [], edges: [] };
  if (!nf) throw new Error("no nodes frame: the map draws nodes from edges only, without stats or arcs");
  const pick = (frame, name) => frame.fields.find((x) => lower(x) === name);
  const prefix = (frame, p) => frame.fields.filter((x) => x.name.startsWith(p));
  // What nodes and edges have alike: id, the two stats (with the options' units), details.
  const common = (frame, what, units) => {
    const f = { id: pick(frame, "id"), mainStat: pick(frame, "mainstat"), secondaryStat: pick(frame, "secondarystat"), details: prefix(frame, "detail__") };
    if (!f.id) throw new Error(`id field is required for ${what} data frame.`);
    withUnit(f.mainStat, units?.mainStatUnit);
    withUnit(f.secondaryStat, units?.secondaryStatUnit);
    return f;
  };
  const stats = (f, i) => ({
    mainStat: statToString(f.mainStat, i),
    secondaryStat: statToString(f.secondaryStat, i),
    mainStatValue: f.mainStat?.values[i] ?? null,
    secondaryStatValue: f.secondaryStat?.values[i] ?? null,
    details: Object.fromEntries(f.details.map((x) => [x.config.displayName || x.name, x.values[i] ?? null])),
  });
  const n = { ...common(nf, "nodes", options?.nodes), title: pick(nf, "title"), subTitle: pick(nf, "subtitle"), arcs: prefix(nf, "arc__") };
  const nodes = n.id.values.map((id, i) => ({
    id,
    title: n.title?.values[i] || "",
    subTitle: n.subTitle?.values[i] || "",
    ...stats(n, i),
    arcs: n.arcs.map((f) => ({
      field: f.name,
      name: f.config.displayName || f.name,
      color: f.config.color?.fixedColor ?? "",
      value: f.values[i] ?? null,
    })),
  }));
  const byId = new Map(nodes.map((x) => [x.id, x]));
  let edges = [];
  if (ef) {
    const e = { ...common(ef, "edges", options?.edges), source: pick(ef, "source"), target: pick(ef, "target") };
    edges = e.id.values.map((id, i) => {
      const source = e.source?.values[i];
      const target = e.target?.values[i];
      for (const [what, v] of [["source", source], ["target", target]]) {
        if (!byId.has(v)) throw new Error(`edge ${id}: its ${what} "${v}" is not a node (Grafana's panel fails here)`);
      }
      return { id, source, target, ...stats(e, i) };
    });
  }
  return { nodes, edges };
}

// Layers by longest path from the roots (cycles broken by visiting order), callers left of
// callees. A layer taller than the panel wraps into several columns, as many rows as make the
// whole map largest on the panel (so 50 workloads stay readable without zooming); within a
// layer, by namespace then name, column after column, so a namespace's workloads sit together
// (callers last, see below).
const DX = 190;
export function layout(nodes, edges, width, height) {
  // Rows further apart when some node has a loop drawn above it.
  const DY = edges.some((e) => e.source === e.target) ? 175 : 135;
  const out = new Map(nodes.map((n) => [n.id, []]));
  const indeg = new Map(nodes.map((n) => [n.id, 0]));
  for (const e of edges) {
    if (e.source === e.target) continue;
    out.get(e.source).push(e.target);
    indeg.set(e.target, indeg.get(e.target) + 1);
  }
  const rank = new Map();
  const order = [...nodes].sort((a, b) => indeg.get(a.id) - indeg.get(b.id) || a.id.localeCompare(b.id));
  const visiting = new Set();
  const visit = (id, r) => {
    if (visiting.has(id) || (rank.has(id) && rank.get(id) >= r)) return;
    rank.set(id, r);
    visiting.add(id);
    for (const t of out.get(id)) visit(t, r + 1);
    visiting.delete(id);
  };
  for (const n of order) if (!rank.has(n.id)) visit(n.id, 0);
  const layers = [];
  for (const n of nodes) (layers[rank.get(n.id)] ??= []).push(n);
  const filled = layers.filter(Boolean);
  // Nodes that call others last in their layer: in its last column, next to their callees, so
  // that their edges cross no column of the same layer.
  const calls = (n) => (out.get(n.id).length > 0 ? 1 : 0);
  for (const l of filled) {
    l.sort((a, b) => calls(a) - calls(b) || (a.subTitle || "").localeCompare(b.subTitle || "") || a.id.localeCompare(b.id));
  }
  const tallest = Math.max(1, ...filled.map((l) => l.length));
  let best = null;
  for (let rows = 1; rows <= tallest; rows++) {
    const cols = filled.reduce((c, l) => c + Math.ceil(l.length / rows), 0);
    const w = 40 + cols * DX;
    const h = 70 + (rows + 0.5) * DY; // room above the first row for loops, half a row for staggering
    const scale = Math.min(width / w, height / h);
    if (!best || scale > best.scale + 1e-9) best = { rows, cols, w, h, scale };
  }
  const pos = new Map();
  let col = 0;
  for (const l of filled) {
    const used = Math.min(best.rows, l.length);
    l.forEach((n, i) => {
      const sub = Math.floor(i / best.rows);
      const c = col + sub;
      const inCol = Math.min(best.rows, l.length - sub * best.rows);
      // A layer's later columns half a row down: lines from the column before pass between
      // their nodes, not through them.
      const top = ((best.rows - inCol) * DY) / 2 + (sub % 2) * (DY / 2);
      pos.set(n.id, { x: 20 + DX / 2 + c * DX, y: 95 + top + (i % best.rows) * DY });
    });
    col += Math.ceil(l.length / Math.max(used, 1));
  }
  return { pos, width: best.w, height: best.h };
}

// The control point of a quadratic curve from a to b whose middle lies `bend` off the straight
// line, the smallest bend (from `first`, either side) that keeps every point of it more than a
// node's radius from the other nodes' centres (straight lines through a node read as two
// edges); `all`: every node, for the label.
export function route(a, b, first, nodes, all) {
  const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
  const nx = -(b.y - a.y) / len;
  const ny = (b.x - a.x) / len;
  const m = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  const at = (c, t) => ({
    x: (1 - t) * (1 - t) * a.x + 2 * (1 - t) * t * c.x + t * t * b.x,
    y: (1 - t) * (1 - t) * a.y + 2 * (1 - t) * t * c.y + t * t * b.y,
  });
  const clear = (c) => {
    for (let t = 0.02; t < 1; t += 0.02) {
      const p = at(c, t);
      if (nodes.some((n) => Math.hypot(p.x - n.x, p.y - n.y) < R + 8)) return false;
    }
    return true;
  };
  // The label (two lines of ~70 px) where it covers no node nor title: the middle if it can.
  const label = (c) => {
    for (const t of [0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78]) {
      const p = at(c, t);
      if (!all.some((n) => Math.abs(p.x - n.x) < R + 45 && p.y - n.y > -R - 16 && p.y - n.y < R + 48)) return p;
    }
    return at(c, 0.5);
  };
  const bends = [first];
  for (let d = 30; d <= 360; d += 30) bends.push(first + d, first - d);
  for (const bend of bends) {
    const c = { x: m.x + nx * 2 * bend, y: m.y + ny * 2 * bend };
    if (clear(c)) return { c, mid: label(c) };
  }
  const c = { x: m.x + nx * 2 * first, y: m.y + ny * 2 * first };
  return { c, mid: label(c) };
}

function arcPath(x, y, start, share) {
  const a0 = 2 * Math.PI * start;
  const a1 = 2 * Math.PI * (start + share);
  const large = share > 0.5 ? 1 : 0;
  return `M ${x + Math.sin(a0) * R} ${y - Math.cos(a0) * R} A ${R} ${R} 0 ${large} 1 ${x + Math.sin(a1) * R} ${y - Math.cos(a1) * R}`;
}

function Ring({ node, x, y, theme }) {
  const color = (c) => theme.visualization.getColorByName(c);
  const full = node.arcs.find((a) => a.value >= 1);
  if (full) return <circle data-ring={full.field} fill="none" stroke={color(full.color)} strokeWidth={3} r={R} cx={x} cy={y} />;
  const nonZero = node.arcs.filter((a) => a.value !== 0);
  if (!nonZero.length) return <circle data-ring="none" fill="none" stroke="gray" strokeWidth={3} r={R} cx={x} cy={y} />;
  let at = 0;
  return nonZero.map((a) => {
    const share = Math.min(a.value ?? 0, 1 - at);
    const el = <path key={a.field} data-ring={a.field} d={arcPath(x, y, at, share)} fill="none" stroke={color(a.color)} strokeWidth={3} />;
    at += a.value ?? 0;
    return el;
  });
}

export function NodeGraphView({ graph, width, height, theme }) {
  const { pos, width: w, height: h } = layout(graph.nodes, graph.edges, width, height);
  const text = theme.colors.text.primary;
  const muted = theme.colors.text.secondary;
  const scale = Math.min(1, width / w, height / h);
  const pairs = new Set(graph.edges.map((e) => `${e.source}\n${e.target}`));
  const others = (e) => graph.nodes.filter((n) => n.id !== e.source && n.id !== e.target).map((n) => pos.get(n.id));
  return (
    <svg width={width} height={height} viewBox={`0 0 ${Math.max(w, width / scale)} ${Math.max(h, height / scale)}`} style={{ fontFamily: theme.typography.fontFamily }}>
      <defs>
        <marker id="fl-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" fill={muted} />
        </marker>
      </defs>
      {graph.edges.map((e) => {
        const a = pos.get(e.source);
        const b = pos.get(e.target);
        if (e.source === e.target) {
          // Traffic within one node (a namespace's workloads calling each other): a loop above it.
          const x = a.x + R * 0.6;
          const y = a.y - R * 0.8;
          return (
            <g key={e.id} data-edge-id={e.id} data-source={e.source} data-target={e.target}>
              <path d={`M ${a.x - R * 0.6} ${y} C ${a.x - R} ${a.y - R * 2}, ${a.x + R} ${a.y - R * 2}, ${x} ${y}`} fill="none" stroke={muted} strokeWidth={1.5} markerEnd="url(#fl-arrow)" />
              <text x={a.x} y={a.y - R * 1.75} textAnchor="middle" fontSize={10} fill={text}>
                {[e.mainStat, e.secondaryStat].filter(Boolean).join("  ")}
              </text>
            </g>
          );
        }
        // A curve bent just enough to keep clear of every other node (and of its own reverse).
        const { c, mid } = route(a, b, pairs.has(`${e.target}\n${e.source}`) ? 14 : 0, others(e), [...pos.values()]);
        const unit = (dx, dy) => ((l) => [dx / l, dy / l])(Math.hypot(dx, dy) || 1);
        const [sx, sy] = unit(c.x - a.x, c.y - a.y);
        const [tx, ty] = unit(b.x - c.x, b.y - c.y);
        const x1 = a.x + sx * (R + 5);
        const y1 = a.y + sy * (R + 5);
        const x2 = b.x - tx * (R + 6);
        const y2 = b.y - ty * (R + 6);
        return (
          <g key={e.id} data-edge-id={e.id} data-source={e.source} data-target={e.target}>
            <path d={`M ${x1} ${y1} Q ${c.x} ${c.y} ${x2} ${y2}`} fill="none" stroke={muted} strokeWidth={1.5} markerEnd="url(#fl-arrow)" />
            <text x={mid.x} y={mid.y - 4} textAnchor="middle" fontSize={10} fill={text}>
              <tspan>{e.mainStat}</tspan>
              <tspan x={mid.x} dy={12}>{e.secondaryStat}</tspan>
            </text>
          </g>
        );
      })}
      {graph.nodes.map((n) => {
        const { x, y } = pos.get(n.id);
        return (
          <g key={n.id} data-node-id={n.id}>
            <circle r={R} cx={x} cy={y} fill={theme.components.panel.background} />
            <Ring node={n} x={x} y={y} theme={theme} />
            <text x={x} y={y - 2} textAnchor="middle" fontSize={10} fill={text}>{n.mainStat}</text>
            <text x={x} y={y + 12} textAnchor="middle" fontSize={10} fill={text}>{n.secondaryStat}</text>
            <text data-title x={x} y={y + R + 16} textAnchor="middle" fontSize={12} fill={text}>{n.title}</text>
            <text x={x} y={y + R + 30} textAnchor="middle" fontSize={10} fill={muted}>{n.subTitle}</text>
          </g>
        );
      })}
    </svg>
  );
}
