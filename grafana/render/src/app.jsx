// Draws flowlens's dashboards in a browser the way Grafana would, from a snapshot of real
// Prometheus answers (grafana/render/render.mjs makes it): per panel, the answers become data
// frames (frames.js + @grafana/prometheus's transformV2), the panel's transformations run
// through @grafana/data's transformDataFrame with Grafana's standard transformers, field config
// and overrides through applyFieldOverrides, and the panel is drawn with @grafana/ui's
// TimeSeries, BigValue (stat), Table and BarGauge, or the flow map (nodegraph.jsx).
// What every panel showed, or the error it failed with, is left in window.flowlensResult.
import React from "react";
import { createRoot } from "react-dom/client";
import { firstValueFrom } from "rxjs";
import {
  applyFieldOverrides,
  createTheme,
  dateTime,
  getDisplayProcessor,
  getFieldDisplayValues,
  standardTransformers,
  standardTransformersRegistry,
  transformDataFrame,
  FieldType,
  ThemeContext,
} from "@grafana/data";
import { BigValue, BarGauge, GlobalStyles, Table, TimeSeries } from "@grafana/ui";
import { panelFrames } from "./frames.js";
import { registryFor, unknownProperties } from "./registry.js";
import { NodeGraphView, readGraph } from "./nodegraph.jsx";

// As Grafana's app registers them (several ids are aliases of one transformer: first wins).
standardTransformersRegistry.setInit(() => {
  const byId = new Map();
  for (const t of Object.values(standardTransformers)) {
    if (!byId.has(t.id)) byId.set(t.id, { id: t.id, name: t.name, description: t.description, transformation: () => t, editor: () => null });
  }
  return [...byId.values()];
});

const theme = createTheme({ colors: { mode: "dark" } });
const WIDTH = 1600;
const CELL = 30;
const GAP = 8;
const HEADER = 32;

async function transform(panel, frames) {
  const list = panel.transformations ?? [];
  for (const t of list) {
    if (!standardTransformersRegistry.getIfExists(t.id)) throw new Error(`transformation "${t.id}" is not one of @grafana/data's standard transformers (Grafana's app has a few more; this renderer draws without them)`);
  }
  if (!list.length) return frames;
  return firstValueFrom(transformDataFrame(list, frames, { interpolate: (v) => v }));
}

// What a panel plugin adds to the dashboard's field config defaults when Grafana loads it:
// series colours from the classic palette (time series), thresholds colours (stat, bar gauge).
const PLUGIN_DEFAULTS = {
  timeseries: { color: { mode: "palette-classic" } },
  stat: { color: { mode: "thresholds" }, thresholds: { mode: "absolute", steps: [{ color: "green", value: null }, { color: "red", value: 80 }] } },
  bargauge: { color: { mode: "thresholds" }, thresholds: { mode: "absolute", steps: [{ color: "green", value: null }, { color: "red", value: 80 }] } },
};

function withConfig(panel, frames, timeRange) {
  const registry = registryFor(panel);
  const defaults = { ...PLUGIN_DEFAULTS[panel.type], ...panel.fieldConfig?.defaults };
  const unknown = unknownProperties(panel, registry);
  if (unknown.length) throw new Error(`override properties Grafana does not know: ${unknown.join(", ")}`);
  return applyFieldOverrides({
    data: frames,
    fieldConfig: { defaults, overrides: panel.fieldConfig?.overrides ?? [] },
    fieldConfigRegistry: registry,
    replaceVariables: (v) => v,
    theme,
    timeZone: "utc",
    timeRange,
  });
}

const rows = (frames) => frames.reduce((n, f) => n + f.length, 0);
const numbers = (frames) =>
  frames.reduce(
    (n, f) => n + f.fields.filter((x) => x.type === FieldType.number).reduce((m, x) => m + x.values.filter((v) => v != null && !Number.isNaN(v)).length, 0),
    0,
  );

// As Grafana's time series panel prepares its fields: a value that is not a finite number
// (NaN from a ratio or a quantile over no requests) becomes a gap (null); uPlot draws nothing
// for a series holding NaN.
function graphable(frames) {
  return frames.map((f) => ({
    ...f,
    fields: f.fields.map((x) =>
      x.type === FieldType.number ? { ...x, values: x.values.map((v) => (Number.isFinite(v) || v == null ? v : null)) } : x,
    ),
  }));
}

// A stat's or bar gauge's values: each field reduced as the panel's options say.
function displayValues(panel, frames) {
  return getFieldDisplayValues({
    fieldConfig: panel.fieldConfig,
    reduceOptions: panel.options?.reduceOptions ?? { calcs: ["lastNotNull"] },
    data: frames,
    theme,
    replaceVariables: (v) => v,
    timeZone: "utc",
  });
}

// Everything the panel is drawn from, and a summary of it for the checks.
async function preparePanel(panel, answers, snapshot) {
  const timeRange = {
    from: dateTime(snapshot.from * 1000),
    to: dateTime(snapshot.to * 1000),
    raw: { from: "now-1h", to: "now" },
  };
  const raw = panelFrames(panel, answers, snapshot.stepMs);
  let frames = withConfig(panel, await transform(panel, raw), timeRange);
  if (panel.type === "timeseries") frames = graphable(frames);
  const info = {
    rows: rows(frames),
    values: numbers(frames),
    frames: frames.length,
    fields: frames.map((f) => `${f.refId ?? f.name ?? ""}: ${f.fields.map((x) => x.name).join(", ")}`),
  };
  if (panel.type === "nodeGraph") {
    const graph = readGraph(frames, panel.options);
    info.graph = graph;
    info.rows = graph.nodes.length + graph.edges.length;
    info.values = graph.nodes.length;
  }
  if (panel.type === "table") {
    const f = frames[0];
    info.values = f?.length ?? 0; // a table of labels alone (alerts) has data without numbers
    info.columns = f ? f.fields.map((x) => x.config.displayName ?? x.name) : [];
    info.cells = f
      ? Array.from({ length: f.length }, (_, i) =>
          f.fields.map((x) => (x.display ? x.display(x.values[i]) : { text: String(x.values[i]) })).map((d) => `${d.prefix ?? ""}${d.text}${d.suffix ?? ""}`),
        )
      : [];
  }
  if (panel.type === "stat") {
    info.stats = displayValues(panel, frames).map((d) => ({ name: d.display.title, text: `${d.display.prefix ?? ""}${d.display.text}${d.display.suffix ?? ""}`, value: d.display.numeric }));
  }
  if (panel.type === "timeseries") {
    info.series = frames.flatMap((f) => f.fields.filter((x) => x.type === FieldType.number).map((x) => x.state?.displayName ?? x.config.displayName ?? x.name));
  }
  return { frames, info, timeRange };
}

class Boundary extends React.Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }
  static getDerivedStateFromError(error) {
    return { error };
  }
  componentDidCatch(error) {
    this.props.onError(error);
  }
  render() {
    if (this.state.error) return <div className="fl-error">Panel failed: {String(this.state.error.message ?? this.state.error)}</div>;
    return this.props.children;
  }
}

function PanelBody({ panel, prepared, width, height }) {
  const { frames, info, timeRange } = prepared;
  if (!info.values && panel.type !== "row") return <div className="fl-nodata">No data</div>;
  switch (panel.type) {
    case "timeseries":
      return (
        <TimeSeries
          frames={frames}
          width={width}
          height={height}
          timeRange={timeRange}
          timeZone="utc"
          legend={panel.options?.legend ?? { showLegend: true, displayMode: "list", placement: "bottom", calcs: [] }}
          options={panel.options}
        />
      );
    case "stat": {
      const values = displayValues(panel, frames);
      const w = Math.floor(width / Math.max(values.length, 1));
      return (
        <div style={{ display: "flex" }}>
          {values.map((v, i) => (
            <BigValue
              key={i}
              theme={theme}
              value={v.display}
              sparkline={v.sparkline}
              width={w}
              height={height}
              colorMode={panel.options?.colorMode ?? "value"}
              graphMode={panel.options?.graphMode ?? "none"}
              justifyMode={panel.options?.justifyMode ?? "auto"}
              textMode={panel.options?.textMode ?? "auto"}
            />
          ))}
        </div>
      );
    }
    case "bargauge": {
      const values = displayValues(panel, frames);
      const h = Math.floor(height / Math.max(values.length, 1));
      return values.map((v, i) => (
        <BarGauge key={i} theme={theme} value={v.display} field={v.field} display={v.display && getDisplayProcessor({ field: v.field, theme })} width={width} height={h} orientation="horizontal" />
      ));
    }
    case "table":
      return <Table data={frames[0]} width={width} height={height} cellHeight={panel.options?.cellHeight} fieldConfig={panel.fieldConfig} timeRange={timeRange} />;
    case "nodeGraph":
      return <NodeGraphView graph={info.graph} width={width} height={height} theme={theme} />;
    default:
      throw new Error(`no renderer for panel type "${panel.type}"`);
  }
}

function Panel({ panel, prepared, error, report }) {
  const g = panel.gridPos;
  const colW = (WIDTH - GAP) / 24;
  const style = {
    left: g.x * colW + GAP,
    top: g.y * (CELL + GAP) + GAP,
    width: g.w * colW - GAP,
    height: g.h * CELL + (g.h - 1) * GAP,
  };
  if (panel.type === "row") {
    return (
      <div className="fl-row" style={style} data-panel-id={panel.id}>
        {panel.title}
      </div>
    );
  }
  const bodyW = Math.floor(style.width - 16);
  const bodyH = Math.floor(style.height - HEADER - 8);
  return (
    <div className="fl-panel" style={style} data-panel-id={panel.id} data-panel-title={panel.title}>
      <div className="fl-title" title={panel.description}>
        {panel.title}
      </div>
      <div className="fl-body" style={{ width: bodyW, height: bodyH }}>
        {error ? (
          <div className="fl-error">Panel failed: {error}</div>
        ) : (
          <Boundary onError={(e) => report(panel, String(e.message ?? e))}>
            <PanelBody panel={panel} prepared={prepared} width={bodyW} height={bodyH} />
          </Boundary>
        )}
      </div>
    </div>
  );
}

function Dashboard({ dash, panels, report }) {
  const height = Math.max(...dash.panels.map((p) => (p.gridPos.y + p.gridPos.h) * (CELL + GAP))) + GAP;
  return (
    <section className="fl-dashboard" id={`dash-${dash.uid}`} data-uid={dash.uid}>
      <h1>{dash.title}</h1>
      <div className="fl-grid" style={{ width: WIDTH, height }}>
        {dash.panels.map((p) => (
          <Panel key={p.id} panel={p} prepared={panels[p.id]?.prepared} error={panels[p.id]?.error} report={report} />
        ))}
      </div>
    </section>
  );
}

async function render(snapshot) {
  const result = { dashboards: {} };
  const prepared = {};
  for (const dash of snapshot.dashboards) {
    const r = (result.dashboards[dash.uid] = { title: dash.title, panels: {} });
    prepared[dash.uid] = {};
    for (const p of dash.panels) {
      const entry = (r.panels[p.id] = { title: p.title, type: p.type });
      if (p.type === "row") continue;
      try {
        const x = await preparePanel(p, snapshot.answers[dash.uid]?.[p.id] ?? {}, snapshot);
        Object.assign(entry, x.info);
        prepared[dash.uid][p.id] = { prepared: x };
      } catch (e) {
        entry.error = String(e.message ?? e);
        prepared[dash.uid][p.id] = { error: entry.error };
      }
    }
  }
  const report = (panel, message) => {
    for (const d of Object.values(result.dashboards)) {
      if (d.panels[panel.id]?.title === panel.title && !d.panels[panel.id].error) d.panels[panel.id].error = message;
    }
  };
  document.body.style.background = theme.colors.background.canvas;
  document.body.style.color = theme.colors.text.primary;
  document.body.style.fontFamily = theme.typography.fontFamily;
  const style = document.createElement("style");
  style.textContent = `
    body { margin: 0; padding: 8px 16px; }
    h1 { font-size: 20px; font-weight: 500; margin: 16px 0 4px; }
    .fl-note { color: ${theme.colors.text.secondary}; font-size: 13px; }
    .fl-grid { position: relative; }
    .fl-panel, .fl-row { position: absolute; box-sizing: border-box; }
    .fl-panel { background: ${theme.components.panel.background}; border: 1px solid ${theme.components.panel.borderColor}; border-radius: 2px; overflow: hidden; }
    .fl-title { height: ${HEADER}px; line-height: ${HEADER}px; padding: 0 8px; font-size: 14px; font-weight: 500; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .fl-body { margin: 0 8px 8px; position: relative; }
    .fl-row { font-size: 16px; font-weight: 500; line-height: ${CELL}px; border-bottom: 1px solid ${theme.colors.border.weak}; }
    .fl-error { color: ${theme.colors.error.text}; padding: 8px; }
    .fl-nodata { color: ${theme.colors.text.secondary}; padding: 8px; text-align: center; }`;
  document.head.appendChild(style);
  const root = document.getElementById("root");
  await new Promise((done) => {
    createRoot(root).render(
      <ThemeContext.Provider value={theme}>
        <GlobalStyles />
        <p className="fl-note">{snapshot.note}</p>
        {snapshot.dashboards.map((d) => (
          <Dashboard key={d.uid} dash={d} panels={prepared[d.uid]} report={report} />
        ))}
      </ThemeContext.Provider>,
    );
    // uPlot draws after layout: give the panels two frames and a moment.
    requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 500)));
  });
  window.flowlensResult = result;
  return result;
}

window.flowlensRender = render;
if (window.flowlensSnapshot) render(window.flowlensSnapshot);
