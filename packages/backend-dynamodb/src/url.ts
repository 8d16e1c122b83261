import { TernError } from "@tern/core";
import type { DynamoDbBackendOptions } from "./options.js";

const FORM = "dynamodb://<table>?region=<region>&endpoint=<url> (region and endpoint optional)";

/**
 * Reads a `dynamodb://<table>?region=<region>&endpoint=<url>` backend URL (the form
 * `TERN_BACKEND` takes) into {@link DynamoDbBackendOptions}. A malformed URL fails with an error
 * that names it and shows the expected form.
 *
 * @example
 * parseDynamoDbUrl("dynamodb://tern?region=eu-west-1"); // { table: "tern", region: "eu-west-1" }
 */
export function parseDynamoDbUrl(url: string): DynamoDbBackendOptions {
  const fail = (problem: string): never => {
    throw new TernError("BACKEND_URL", `Backend URL ${JSON.stringify(url)}: ${problem}. Use ${FORM}.`);
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new TernError("BACKEND_URL", `Backend URL ${JSON.stringify(url)} is not a valid URL. Use ${FORM}.`, {
      cause: error,
    });
  }
  if (parsed.protocol !== "dynamodb:") fail(`the scheme is "${parsed.protocol.slice(0, -1)}", not "dynamodb"`);
  const table = parsed.hostname;
  if (table === "") fail("it names no table");
  if (!/^[a-zA-Z0-9_.-]{3,255}$/.test(table)) {
    fail(`table "${table}" is not a valid DynamoDB table name (3-255 letters, digits, "_", "-" and ".")`);
  }
  if (parsed.port !== "" || parsed.username !== "" || parsed.password !== "") {
    fail("a table takes no port or user; put the endpoint in ?endpoint=");
  }
  if (parsed.pathname !== "" && parsed.pathname !== "/") fail(`it has a path ("${parsed.pathname}") after the table`);
  const options: { table: string; region?: string; endpoint?: string } = { table };
  for (const name of new Set(parsed.searchParams.keys())) {
    const values = parsed.searchParams.getAll(name);
    if (name !== "region" && name !== "endpoint") fail(`unknown parameter "${name}"`);
    if (values.length > 1) fail(`parameter "${name}" is given ${values.length} times`);
    const value = values[0] ?? "";
    if (value === "") fail(`parameter "${name}" is empty`);
    if (name === "region") {
      if (!/^[a-z0-9-]+$/.test(value)) fail(`region "${value}" is not an AWS region name such as eu-west-1`);
      options.region = value;
    } else {
      let endpoint: URL | undefined;
      try {
        endpoint = new URL(value);
      } catch {
        endpoint = undefined;
      }
      if (endpoint === undefined || (endpoint.protocol !== "http:" && endpoint.protocol !== "https:")) {
        fail(`endpoint "${value}" is not an http:// or https:// URL`);
      }
      options.endpoint = value;
    }
  }
  return options;
}
