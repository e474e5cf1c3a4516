// The access hook. nginx.conf runs it as `cdn.access()`: init.lua puts this function in the global `cdn` table,
// so a request pays neither a file lookup nor a require.
import { runAccess } from "../core/hooks";

export default runAccess;
