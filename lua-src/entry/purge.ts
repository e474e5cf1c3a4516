import { handlePurge } from "../features/purge/index";

handlePurge();
