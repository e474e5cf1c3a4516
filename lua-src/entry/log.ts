// The log hook. nginx.conf runs it as `cdn.log()`: init.lua puts this function in the global `cdn` table,
// so a request pays neither a file lookup nor a require.
import { runLog } from "../core/hooks";

export default runLog;
