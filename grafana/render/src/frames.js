// Prometheus API answers -> the data frames a Grafana panel gets.
//
// Grafana's server side (its Go Prometheus client) turns each series of an answer into a frame
// of two fields, Time and Value, the series' labels on the value field and the target's legend
// format applied as `displayNameFromDS`; the browser side then runs @grafana/prometheus's
// transformV2 over them (tables for `format: table`, "Value #refId" columns, the "__auto"
// legend). The first half is written here (what Grafana's server does); the second is
// Grafana's own code.
import { FieldType } from "@grafana/data";
import { transformV2 } from "../node_modules/@grafana/prometheus/dist/esm/result_transformer.mjs";

// {{label}} in a legend format: the label's value, empty when the series lacks it.
export function legendName(format, labels) {
  return format.replace(/\{\{\s*(.+?)\s*\}\}/g, (_, l) => labels[l] ?? "");
}

function seriesFrame(target, series, resultType, stepMs) {
  const samples = series.values ?? (series.value ? [series.value] : []);
  const labels = { ...series.metric };
  const value = {
    name: labels.__name__ ?? "Value",
    type: FieldType.number,
    labels,
    config: {},
    values: samples.map((s) => Number(s[1])),
  };
  const legend = target.legendFormat;
  if (legend && legend !== "__auto") value.config.displayNameFromDS = legendName(legend, labels);
  return {
    refId: target.refId,
    name: legend && legend !== "__auto" ? value.config.displayNameFromDS : undefined,
    meta: {
      type: resultType === "matrix" ? "timeseries-multi" : "numeric-multi",
      typeVersion: [0, 1],
      custom: { resultType },
      executedQueryString: target.expr,
    },
    fields: [
      {
        name: "Time",
        type: FieldType.time,
        config: stepMs ? { interval: stepMs } : {},
        values: samples.map((s) => Math.round(Number(s[0]) * 1000)),
      },
      value,
    ],
    length: samples.length,
  };
}

// answers: { refId: { resultType, result } } for the panel's targets; returns the frames the
// panel's transformations get, in the order Grafana gives them.
export function panelFrames(panel, answers, stepMs) {
  const targets = panel.targets ?? [];
  const frames = [];
  for (const t of targets) {
    const a = answers[t.refId];
    if (!a) continue;
    if (a.resultType === "scalar") {
      frames.push(seriesFrame(t, { metric: {}, value: a.result }, "scalar", stepMs));
      continue;
    }
    for (const s of a.result) frames.push(seriesFrame(t, s, a.resultType, stepMs));
    if (a.result.length === 0 && t.format === "table") {
      // An empty table answer still yields its (empty) frame.
      frames.push({ refId: t.refId, fields: [], length: 0, meta: { custom: { resultType: a.resultType } } });
    }
  }
  const request = { targets, app: "dashboard" };
  return transformV2({ data: frames }, request, {}).data;
}
