import { parseDynamoDbUrl } from "@tern/backend-dynamodb";
import { describe, expect, it } from "vitest";

describe("parseDynamoDbUrl", () => {
  it("reads the table, the region and the endpoint", () => {
    expect(parseDynamoDbUrl("dynamodb://tern?region=eu-west-1&endpoint=http://127.0.0.1:8000")).toEqual({
      table: "tern",
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:8000",
    });
  });

  it("leaves region and endpoint out when the URL has none", () => {
    expect(parseDynamoDbUrl("dynamodb://My_Table.prod-1")).toEqual({ table: "My_Table.prod-1" });
    expect(parseDynamoDbUrl("dynamodb://tern/")).toEqual({ table: "tern" });
  });

  for (const [url, problem] of [
    ["dynamodb://", /names no table/],
    ["dynamodb:///tern", /names no table/],
    ["dynamodb://t?region=us-east-1", /table "t" is not a valid DynamoDB table name/],
    ["dynamodb://tern/runs", /has a path \("\/runs"\)/],
    ["dynamodb://tern:8000", /no port/],
    ["dynamodb://tern?regin=us-east-1", /unknown parameter "regin"/],
    ["dynamodb://tern?region=", /parameter "region" is empty/],
    ["dynamodb://tern?region=a&region=b", /"region" is given 2 times/],
    ["dynamodb://tern?region=EU West", /region "EU West" is not an AWS region name/],
    ["dynamodb://tern?endpoint=localhost:8000", /endpoint "localhost:8000" is not an http:\/\/ or https:\/\/ URL/],
    ["dynamodb:tern", /names no table/],
    ["not a url", /is not a valid URL/],
  ] as const) {
    it(`rejects ${JSON.stringify(url)}, naming it and the expected form`, () => {
      const attempt = () => parseDynamoDbUrl(url);
      expect(attempt).toThrow(problem);
      expect(attempt).toThrow(`Backend URL ${JSON.stringify(url)}`);
      expect(attempt).toThrow("Use dynamodb://<table>?region=<region>&endpoint=<url>");
      expect(attempt).toThrow(expect.objectContaining({ code: "BACKEND_URL" }));
    });
  }
});
