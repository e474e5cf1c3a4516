/** The signed-URL gate's policy data (src/features/signed-urls.ts, `SignedUrlsData`). */
interface SignedUrlsData {
  secretEnv: string;
  hex: boolean;
  expParam: string;
  sigParam: string;
  requireIp: boolean;
  scope?: import("../core/gate-scope").ScopeData;
}

interface FeaturesData {
  signedUrls?: SignedUrlsData;
}
