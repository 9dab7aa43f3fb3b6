/**
 * The Kubernetes objects NetworkPolicy is judged from, reduced to the fields the semantics use.
 * The shapes are those of networking.k8s.io/v1 NetworkPolicy and core/v1 Pod and Namespace, so
 * an object read from the store (or a manifest) is passed as it is.
 */

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface IPBlock {
  readonly cidr: string;
  readonly except?: readonly string[];
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IPBlock;
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NetworkPolicyPort {
  readonly protocol?: Protocol;
  /** A number, or the name of a container port of the destination pod. */
  readonly port?: number | string;
  readonly endPort?: number;
}

export interface NetworkPolicyIngressRule {
  readonly from?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  readonly to?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicy {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: {
    readonly podSelector: LabelSelector;
    readonly policyTypes?: readonly ('Ingress' | 'Egress')[];
    readonly ingress?: readonly NetworkPolicyIngressRule[];
    readonly egress?: readonly NetworkPolicyEgressRule[];
  };
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: Protocol;
}

export interface Pod {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: { readonly nodeName?: string; readonly containers?: readonly { readonly ports?: readonly ContainerPort[] }[] };
  readonly status?: { readonly podIP?: string };
}

export interface Namespace {
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
}

/** The namespace label every namespace carries (the API server sets it; so do we). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * selectorMatches: metav1.LabelSelector semantics. Every matchLabels pair and every
 * matchExpressions requirement must hold; an empty selector matches everything.
 */
export function selectorMatches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.operator) {
      case 'In': if (!has || !(r.values ?? []).includes(v!)) return false; break;
      case 'NotIn': if (has && (r.values ?? []).includes(v!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
    }
  }
  return true;
}

/** The labels of a namespace as policies see them: its own plus kubernetes.io/metadata.name. */
export function namespaceLabels(ns: Namespace | undefined, name: string): Readonly<Record<string, string>> {
  return { ...(ns?.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: name };
}
