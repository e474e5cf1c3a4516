import { serveEndpoint } from "../features/metrics";

// content_by_lua_file of the stats endpoint (templates/partials/metrics.hbs)
serveEndpoint("stats");
