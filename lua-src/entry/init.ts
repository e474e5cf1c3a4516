// init_by_lua: load the runtime and the policy data once in the master, so workers share them.
import "../core/hooks";
