// The body hook. nginx.conf runs it as `cdn.body()`: init.lua puts this function in the global `cdn` table,
// so a request pays neither a file lookup nor a require.
import { runBody } from "../core/hooks";

export default runBody;
