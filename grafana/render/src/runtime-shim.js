// @grafana/prometheus's result transformer imports @grafana/runtime only to link exemplar trace
// ids to another data source (not used by flowlens's dashboards); this is that one import.
export function getDataSourceSrv() {
  return { getInstanceSettings: () => undefined };
}
