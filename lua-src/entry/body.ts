import { runBody } from "../core/hooks";

runBody();
