import { runHeaders } from "../core/hooks";

runHeaders();
