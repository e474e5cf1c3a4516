/**
 * `cdn-build/testing`: test your own policy against a booted bundle (run by `cdn-build test`, or by vitest
 * directly). See docs/testing-policies.md.
 */
export { bootPolicy, withLocalOverrides, type AccessLogLine, type BootOptions, type EdgeRequest, type EdgeResponse, type OriginTarget, type TestEdge } from "./edge.js";
export { startMockOrigin, type MockHandler, type MockOrigin, type MockResponse, type RecordedRequest } from "./origin.js";
export {
  expectCacheStatus,
  expectHeader,
  expectNoErrors,
  expectNoHeader,
  expectOriginHits,
  expectStatus,
  SERVED_FROM_CACHE,
  type CacheStatus,
} from "./expect.js";
