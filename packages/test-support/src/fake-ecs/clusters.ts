/** The fake ECS's clusters (fixed at start) and the capacity providers associated with each. */
import { ECS_MESSAGES, EcsError, FAKE_ECS_ACCOUNT_ID } from "./errors.js";
import type { FakeEcsOptions } from "./types.js";

export class Clusters {
  private readonly names: ReadonlySet<string>;
  private readonly capacityProviders = new Map<string, Set<string>>();

  constructor(
    private readonly region: string,
    options: Pick<FakeEcsOptions, "clusters" | "capacityProviders" | "defaultCapacityProviders">,
  ) {
    this.names = new Set(["default", ...(options.clusters ?? [])]);
    for (const cluster of this.names) {
      this.capacityProviders.set(
        cluster,
        new Set(
          options.capacityProviders?.[cluster] ?? options.defaultCapacityProviders ?? ["FARGATE", "FARGATE_SPOT"],
        ),
      );
    }
  }

  /** A cluster's name from a request's `cluster` (name or ARN; "default" when absent). */
  resolve(reference: string | undefined): string {
    const given = reference ?? "default";
    const arn = /^arn:aws[a-z-]*:ecs:([^:]+):(\d{12}):cluster\/(.+)$/.exec(given);
    const name = arn === null ? given : arn[1] === this.region && arn[2] === FAKE_ECS_ACCOUNT_ID ? arn[3] : undefined;
    if (name === undefined || !this.names.has(name)) {
      throw new EcsError("ClusterNotFoundException", ECS_MESSAGES.clusterNotFound);
    }
    return name;
  }

  arn(cluster: string): string {
    return `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:cluster/${cluster}`;
  }

  /** The capacity providers associated with a cluster. */
  providers(cluster: string): ReadonlySet<string> {
    return this.capacityProviders.get(cluster) ?? new Set<string>();
  }

  /** Associates capacity providers with a cluster (PutClusterCapacityProviders), replacing its list. */
  setCapacityProviders(cluster: string, providers: readonly string[]): void {
    if (!this.names.has(cluster)) throw new Error(`FakeEcs: no cluster "${cluster}".`);
    this.capacityProviders.set(cluster, new Set(providers));
  }
}
