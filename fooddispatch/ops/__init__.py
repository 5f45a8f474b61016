"""The operations console: `/ops`, a single page (a map on the apps' vendored Leaflet under `/assets/`,
KPIs, drill-down) fed live over `/v1/ops/ws` from the event stream, the `{prefix}ops` channel and the live courier
index. Operator actions (pause a store, refund an order) go to the owning packages' own routes,
which the page learns from `/v1/ops/routes`. `setup(app)` registers the routes; the component
`fooddispatch.components.ops` starts the feed."""
