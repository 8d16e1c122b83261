/** AWS SDK clients made once per region, from an SDK imported on first use; tests replace how. */

/** Makes a client of a region from the SDK module env-fargate loaded. */
export type RegionalClientFactory<C, S> = (region: string, sdk: S) => C | Promise<C>;

export interface RegionalClients<C, S> {
  /** Replaces how clients are made (undefined: the default); forgets the clients made so far. */
  set(make: RegionalClientFactory<C, S> | undefined): void;
  /** The region's client, made on first use. */
  get(region: string): Promise<C>;
}

export function regionalClients<C, S>(
  loadSdk: () => Promise<S>,
  makeDefault: RegionalClientFactory<C, S>,
): RegionalClients<C, S> {
  let factory: RegionalClientFactory<C, S> | undefined;
  const clients = new Map<string, Promise<C>>();
  return {
    set(make) {
      factory = make;
      clients.clear();
    },
    get(region) {
      let client = clients.get(region);
      if (client === undefined) {
        client = loadSdk().then((sdk) => (factory ?? makeDefault)(region, sdk));
        clients.set(region, client);
      }
      return client;
    },
  };
}
