import { runLog } from "../core/hooks";

runLog();
