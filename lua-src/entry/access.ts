import { runAccess } from "../core/hooks";

runAccess();
