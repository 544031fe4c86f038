// The field config properties Grafana's dashboard knows (its app registers them; they are not
// in a published package), with @grafana/data's own processors. A property a dashboard sets
// that is not listed here is reported as an error by the renderer, not silently dropped.
import {
  FieldConfigOptionsRegistry,
  identityOverrideProcessor,
  numberOverrideProcessor,
  displayNameOverrideProcessor,
  unitOverrideProcessor,
  thresholdsOverrideProcessor,
  valueMappingsOverrideProcessor,
  dataLinksOverrideProcessor,
  stringOverrideProcessor,
  booleanOverrideProcessor,
} from "@grafana/data";

const item = (id, process, extra = {}) => ({
  id,
  path: id,
  name: id,
  process,
  shouldApply: () => true,
  override: () => null,
  editor: () => null,
  settings: {},
  ...extra,
});

export const STANDARD = [
  item("displayName", displayNameOverrideProcessor),
  item("unit", unitOverrideProcessor),
  item("decimals", numberOverrideProcessor),
  item("min", numberOverrideProcessor),
  item("max", numberOverrideProcessor),
  item("noValue", stringOverrideProcessor),
  item("links", dataLinksOverrideProcessor),
  item("mappings", valueMappingsOverrideProcessor),
  item("thresholds", thresholdsOverrideProcessor),
  item("color", identityOverrideProcessor),
  item("filterable", booleanOverrideProcessor),
  item("description", stringOverrideProcessor),
];

// Registry for one panel: the standard properties and the panel's own custom ones (timeseries'
// drawStyle, lineWidth, ...) as its field config defaults name them.
export function registryFor(panel) {
  const custom = Object.keys(panel.fieldConfig?.defaults?.custom ?? {}).map((k) =>
    item(k, identityOverrideProcessor, { isCustom: true }),
  );
  return new FieldConfigOptionsRegistry(() => [...STANDARD, ...custom]);
}

// Property ids the panel's overrides use that the registry does not know.
export function unknownProperties(panel, registry) {
  const bad = [];
  for (const o of panel.fieldConfig?.overrides ?? []) {
    for (const p of o.properties ?? []) if (!registry.getIfExists(p.id)) bad.push(p.id);
  }
  return bad;
}
