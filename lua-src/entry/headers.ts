// The headers hook. nginx.conf runs it as `cdn.headers()`: init.lua puts this function in the global `cdn` table,
// so a request pays neither a file lookup nor a require.
import { runHeaders } from "../core/hooks";

export default runHeaders;
