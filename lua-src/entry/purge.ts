import { handlePurge } from "../features/purge";

handlePurge();
