import { serveEndpoint } from "../features/metrics";

// content_by_lua_file of the metrics endpoint (templates/partials/metrics.hbs)
serveEndpoint("metrics");
