import { runInitWorker } from "../core/hooks";

runInitWorker();
