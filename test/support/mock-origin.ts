/** The scriptable origin of the public test API (`cdn-build/testing`), used by our own tests too. */
export * from "../../src/testing/origin.js";
