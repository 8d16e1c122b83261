import pkg from "../package.json" with { type: "json" };

/** The version of `@tern/core` in use. */
export const TERN_VERSION: string = pkg.version;
