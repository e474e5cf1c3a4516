// ssl_certificate_by_lua: `cdn.certificate(i)` presents certificate i of the tls feature (env() paths).
import { presentCertificate } from "../features/tls";

export default presentCertificate;
