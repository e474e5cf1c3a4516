import { ContainerUsageError, DEFAULT_IMAGE, EMIT_KINDS, type EmitKind } from "./facts.js";

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";
const SERVICE_TYPES: readonly ServiceType[] = ["ClusterIP", "NodePort", "LoadBalancer"];

/** The `build` options of the container emitters, checked. */
export interface ContainerOptions {
  emit: EmitKind[];
  image: string;
  namespace?: string;
  replicas: number;
  hpa?: { min: number; max: number };
  /** Target average CPU utilisation (% of the request) for the HPA. */
  hpaCpu: number;
  serviceType: ServiceType;
  /** CPU request (Kubernetes quantity). */
  cpu: string;
  /** Memory request and limit; derived from the bundle's shared memory when omitted. */
  memory?: string;
}

/** The raw option values as `parseArgs` gives them. */
export interface RawContainerOptions {
  emit?: string[];
  image?: string;
  namespace?: string;
  replicas?: string;
  hpa?: string;
  "hpa-cpu"?: string;
  "service-type"?: string;
  cpu?: string;
  memory?: string;
}

/** The `parseArgs` declarations of these options, for the build command. */
export const CONTAINER_ARGS = {
  emit: { type: "string", multiple: true },
  image: { type: "string" },
  namespace: { type: "string" },
  replicas: { type: "string" },
  hpa: { type: "string" },
  "hpa-cpu": { type: "string" },
  "service-type": { type: "string" },
  cpu: { type: "string" },
  memory: { type: "string" },
} as const;

export const CONTAINER_HELP = `  --emit <k8s|compose>  also write container manifests next to the bundle, from the same build (repeatable,
                     or k8s,compose): <dir>/k8s/ (kustomization.yaml, ConfigMaps holding the bundle,
                     Deployment, Service, PodDisruptionBudget, optional HPA) and <dir>/compose.yaml (the
                     OpenResty service on the bundle folder, and Redis when the policy uses one on
                     127.0.0.1). Needs the openresty target (auto picks it; nginx-lua is refused). Written
                     only when the bundle is: a refused policy or option writes nothing. A build without
                     --emit removes the k8s/ and compose.yaml an earlier build wrote. Nothing is booted.
                     See docs/containers.md
  --image <ref>      container image (default ${DEFAULT_IMAGE})
  --namespace <ns>   k8s: namespace of every resource (default: kubectl's current one)
  --replicas <n>     k8s: pods of the Deployment (default 2; ignored with --hpa)
  --hpa <min:max>    k8s: a HorizontalPodAutoscaler scaling between min and max pods on CPU
  --hpa-cpu <pct>    k8s: the HPA's target CPU utilisation, % of the request (default 70)
  --service-type <t> k8s: ClusterIP (default), NodePort or LoadBalancer (the last two keep the client's
                     address: externalTrafficPolicy Local)
  --cpu <q>          k8s: CPU request (default 500m; no CPU limit)
  --memory <q>       k8s: memory request and limit (default: the bundle's shared memory + 512Mi)`;

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|[KMGTPE]i?)?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function int(value: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ContainerUsageError(`${flag} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}

/** Checks the container options; undefined when no `--emit` was given (then none of them may be). */
export function parseContainerOptions(raw: RawContainerOptions): ContainerOptions | undefined {
  const emit = new Set<EmitKind>();
  for (const v of raw.emit ?? []) {
    for (const part of v.split(",")) {
      const k = part.trim();
      if (!EMIT_KINDS.includes(k as EmitKind)) throw new ContainerUsageError(`unknown --emit "${k}" (use ${EMIT_KINDS.join(" or ")})`);
      emit.add(k as EmitKind);
    }
  }
  const k8sOnly = (["namespace", "replicas", "hpa", "hpa-cpu", "service-type", "cpu", "memory"] as const).filter((k) => raw[k] !== undefined);
  if (emit.size === 0) {
    const given = [...(raw.image !== undefined ? ["image"] : []), ...k8sOnly];
    if (given.length) throw new ContainerUsageError(`--${given[0]} needs --emit k8s or --emit compose`);
    return undefined;
  }
  if (!emit.has("k8s") && k8sOnly.length) throw new ContainerUsageError(`--${k8sOnly[0]} applies to --emit k8s only`);
  const image = raw.image ?? DEFAULT_IMAGE;
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/.test(image)) throw new ContainerUsageError(`--image "${image}" is not an image reference (e.g. ${DEFAULT_IMAGE})`);
  if (raw.namespace !== undefined && !DNS_LABEL.test(raw.namespace)) {
    throw new ContainerUsageError(`--namespace "${raw.namespace}" is not a Kubernetes namespace name (lower-case letters, digits and "-", at most 63)`);
  }
  let hpa: ContainerOptions["hpa"];
  if (raw.hpa !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(raw.hpa);
    if (!m) throw new ContainerUsageError(`--hpa takes min:max, e.g. 2:10 (got "${raw.hpa}")`);
    const min = int(m[1]!, "--hpa min", 1, 1000);
    const max = int(m[2]!, "--hpa max", 1, 1000);
    if (min > max) throw new ContainerUsageError(`--hpa ${raw.hpa}: min is above max`);
    hpa = { min, max };
  }
  if (raw["hpa-cpu"] !== undefined && !hpa) throw new ContainerUsageError("--hpa-cpu needs --hpa min:max");
  const serviceType = (raw["service-type"] ?? "ClusterIP") as ServiceType;
  if (!SERVICE_TYPES.includes(serviceType)) throw new ContainerUsageError(`--service-type "${raw["service-type"]}" (use ${SERVICE_TYPES.join(", ")})`);
  for (const k of ["cpu", "memory"] as const) {
    const v = raw[k];
    if (v !== undefined && (!QUANTITY.test(v) || /^0+(\.0+)?[a-zA-Z]*$/.test(v))) {
      throw new ContainerUsageError(`--${k} "${v}" is not a Kubernetes quantity (e.g. ${k === "cpu" ? "500m or 2" : "512Mi or 2Gi"})`);
    }
  }
  return {
    emit: EMIT_KINDS.filter((k) => emit.has(k)),
    image,
    ...(raw.namespace !== undefined ? { namespace: raw.namespace } : {}),
    replicas: raw.replicas !== undefined ? int(raw.replicas, "--replicas", 1, 1000) : 2,
    ...(hpa ? { hpa } : {}),
    hpaCpu: raw["hpa-cpu"] !== undefined ? int(raw["hpa-cpu"], "--hpa-cpu", 1, 1000) : 70,
    serviceType,
    cpu: raw.cpu ?? "500m",
    ...(raw.memory !== undefined ? { memory: raw.memory } : {}),
  };
}
