/**
 * EventBridge event patterns, matched locally: the same pattern can be a rule's pattern in the
 * stack and a trigger rule's pattern here. Implements the comparison operators of EventBridge's
 * documentation ("Comparison operators for use in event patterns"): exact values, prefix,
 * suffix, equals-ignore-case, wildcard, anything-but (values, prefix, suffix, ignore case,
 * wildcard), numeric, exists, cidr (IPv4 and IPv6 blocks) and $or.
 */

import { BlockList, isIPv4, isIPv6 } from "node:net";
import { TernError } from "@tern/core";

/** A malformed pattern: names where and what. */
export class PatternError extends TernError {
  constructor(path: string, message: string) {
    super("PATTERN", `event pattern ${path === "" ? "" : `at ${path} `}${message}`);
    // Named here, not from the class: a minified bundle renames classes.
    this.name = "PatternError";
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Matcher = (value: Json | undefined, present: boolean) => boolean;

const isObject = (v: unknown): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);

function wildcardRegExp(pattern: string, path: string): RegExp {
  if (pattern.includes("**"))
    throw new PatternError(path, `wildcard ${JSON.stringify(pattern)} has consecutive '*', which EventBridge refuses.`);
  const escaped = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${escaped}$`, "s");
}

function stringOperand(operand: unknown, path: string, name: string): { value: string; ignoreCase: boolean } {
  if (typeof operand === "string") return { value: operand, ignoreCase: false };
  if (isObject(operand) && Object.keys(operand).length === 1 && typeof operand["equals-ignore-case"] === "string") {
    return { value: operand["equals-ignore-case"], ignoreCase: true };
  }
  throw new PatternError(
    path,
    `${name} takes a string or { "equals-ignore-case": string }, got ${JSON.stringify(operand)}.`,
  );
}

/** The block `address/prefix` of one family, or undefined when Node refuses it (prefix too long, say). */
function subnet(address: string, prefix: number, family: "ipv4" | "ipv6"): BlockList | undefined {
  const block = new BlockList();
  try {
    block.addSubnet(address, prefix, family);
    return block;
  } catch {
    return undefined;
  }
}

/**
 * A `cidr` block as a test on addresses, through Node's `BlockList` rather than hand-parsed octets.
 * Like EventBridge, an address only matches a block of its own family: an IPv4 address never
 * falls in an IPv6 block. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is its IPv4 address,
 * for `BlockList` as for EventBridge's matcher.
 */
function cidrMatcher(operand: unknown, path: string): (address: string) => boolean {
  const example = `such as "10.0.0.0/24" or "2001:db8::/32"`;
  if (typeof operand !== "string") throw new PatternError(path, `cidr takes a string ${example}.`);
  const [, address = "", prefix = ""] = /^([^/]+)\/(\d{1,3})$/.exec(operand) ?? [];
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
  const block = family === undefined ? undefined : subnet(address, Number(prefix), family);
  if (block === undefined) {
    throw new PatternError(path, `cidr ${JSON.stringify(operand)} is not an IPv4 or IPv6 block ${example}.`);
  }
  return (value) =>
    isIPv6(value) ? block.check(value, "ipv6") : family === "ipv4" && isIPv4(value) && block.check(value, "ipv4");
}

function numericMatcher(spec: unknown, path: string): (n: number) => boolean {
  if (!Array.isArray(spec) || spec.length === 0 || spec.length % 2 !== 0 || spec.length > 4) {
    throw new PatternError(
      path,
      `numeric takes [op, number] or [op, number, op, number], got ${JSON.stringify(spec)}.`,
    );
  }
  const tests: Array<(n: number) => boolean> = [];
  for (let i = 0; i < spec.length; i += 2) {
    const op = spec[i];
    const bound = spec[i + 1];
    if (typeof bound !== "number" || !Number.isFinite(bound))
      throw new PatternError(path, `numeric bound ${JSON.stringify(bound)} is not a number.`);
    switch (op) {
      case "=":
        tests.push((n) => n === bound);
        break;
      case "<":
        tests.push((n) => n < bound);
        break;
      case "<=":
        tests.push((n) => n <= bound);
        break;
      case ">":
        tests.push((n) => n > bound);
        break;
      case ">=":
        tests.push((n) => n >= bound);
        break;
      default:
        throw new PatternError(path, `numeric operator ${JSON.stringify(op)} is not one of =, <, <=, >, >=.`);
    }
  }
  return (n) => tests.every((t) => t(n));
}

function leafMatcher(spec: Json, path: string): Matcher {
  if (spec === null || typeof spec === "string" || typeof spec === "number" || typeof spec === "boolean") {
    return (value, present) => present && value === spec;
  }
  if (!isObject(spec))
    throw new PatternError(path, `a leaf matcher must be a value or an operator object, got ${JSON.stringify(spec)}.`);
  const keys = Object.keys(spec);
  if (keys.length !== 1)
    throw new PatternError(path, `an operator object has exactly one operator, got ${JSON.stringify(keys)}.`);
  const op = keys[0] as string;
  const operand = spec[op];
  switch (op) {
    case "prefix":
    case "suffix": {
      const { value, ignoreCase } = stringOperand(operand, path, op);
      const needle = ignoreCase ? value.toLowerCase() : value;
      return (v, present) => {
        if (!present || typeof v !== "string") return false;
        const hay = ignoreCase ? v.toLowerCase() : v;
        return op === "prefix" ? hay.startsWith(needle) : hay.endsWith(needle);
      };
    }
    case "equals-ignore-case": {
      if (typeof operand !== "string")
        throw new PatternError(path, `equals-ignore-case takes a string, got ${JSON.stringify(operand)}.`);
      const lower = operand.toLowerCase();
      return (v, present) => present && typeof v === "string" && v.toLowerCase() === lower;
    }
    case "wildcard": {
      if (typeof operand !== "string")
        throw new PatternError(path, `wildcard takes a string, got ${JSON.stringify(operand)}.`);
      const re = wildcardRegExp(operand, path);
      return (v, present) => present && typeof v === "string" && re.test(v);
    }
    case "exists": {
      if (typeof operand !== "boolean")
        throw new PatternError(path, `exists takes true or false, got ${JSON.stringify(operand)}.`);
      // EventBridge: exists works on leaf nodes only; an object in the event is not a leaf.
      return (v, present) => (present && !isObject(v)) === operand;
    }
    case "numeric": {
      const test = numericMatcher(operand, path);
      return (v, present) => present && typeof v === "number" && test(v);
    }
    case "cidr": {
      const inBlock = cidrMatcher(operand, path);
      return (v, present) => present && typeof v === "string" && inBlock(v);
    }
    case "anything-but": {
      let inner: (v: Json | undefined) => boolean;
      if (Array.isArray(operand)) {
        if (operand.length === 0) throw new PatternError(path, "anything-but takes a non-empty list.");
        inner = (v) => operand.some((o) => o === v);
      } else if (isObject(operand)) {
        const innerKeys = Object.keys(operand);
        if (
          innerKeys.length !== 1 ||
          !["prefix", "suffix", "equals-ignore-case", "wildcard"].includes(innerKeys[0] as string)
        ) {
          throw new PatternError(
            path,
            `anything-but takes a value, a list, or one of prefix, suffix, equals-ignore-case, wildcard; got ${JSON.stringify(operand)}.`,
          );
        }
        const innerOp = innerKeys[0] as string;
        const innerOperand = operand[innerOp];
        if (innerOp === "equals-ignore-case" && Array.isArray(innerOperand)) {
          const lowers = innerOperand.map((o) => {
            if (typeof o !== "string") throw new PatternError(path, "anything-but equals-ignore-case takes strings.");
            return o.toLowerCase();
          });
          inner = (v) => typeof v === "string" && lowers.includes(v.toLowerCase());
        } else {
          const m = leafMatcher({ [innerOp]: innerOperand } as Json, path);
          inner = (v) => m(v, true);
        }
      } else {
        inner = (v) => v === operand;
      }
      return (v, present) => present && !inner(v);
    }
    default:
      throw new PatternError(
        path,
        `unknown operator ${JSON.stringify(op)}. EventBridge's operators: prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr.`,
      );
  }
}

/** A compiled pattern: `test(event)`. */
export interface EventPattern {
  readonly source: Readonly<Record<string, unknown>>;
  test(event: unknown): boolean;
}

type Node = (event: Json | undefined) => boolean;

function compileObject(pattern: Record<string, Json>, path: string): Node {
  const keys = Object.keys(pattern);
  if (keys.length === 0) throw new PatternError(path, "is an empty object; give at least one field.");
  const parts: Node[] = [];
  for (const key of keys) {
    const spec = pattern[key] as Json;
    const at = path === "" ? key : `${path}.${key}`;
    if (key === "$or") {
      if (!Array.isArray(spec) || spec.length < 2 || !spec.every(isObject)) {
        throw new PatternError(at, "$or takes a list of at least two patterns.");
      }
      const alternatives = spec.map((alt, i) => compileObject(alt as Record<string, Json>, `${at}[${i}]`));
      parts.push((event) => alternatives.some((alt) => alt(event)));
      continue;
    }
    if (Array.isArray(spec)) {
      if (spec.length === 0)
        throw new PatternError(at, "is an empty list, which matches nothing; list at least one value.");
      const matchers = spec.map((s, i) => leafMatcher(s, `${at}[${i}]`));
      parts.push((event) => {
        const present = isObject(event) && Object.hasOwn(event, key);
        const value = present ? (event as Record<string, Json>)[key] : undefined;
        if (Array.isArray(value)) {
          // An array in the event matches when any element matches.
          return value.some((element) => matchers.some((m) => m(element, true)));
        }
        return matchers.some((m) => m(value, present));
      });
      continue;
    }
    if (isObject(spec)) {
      const nested = compileObject(spec, at);
      parts.push((event) => {
        const value = isObject(event) && Object.hasOwn(event, key) ? event[key] : undefined;
        // EventBridge flattens arrays of objects: a nested pattern matches when any element does.
        if (Array.isArray(value)) return value.some((element) => nested(element));
        // A missing or non-object field still goes down the pattern: its leaves are absent there,
        // which `exists: false` matches and every other matcher does not.
        return nested(isObject(value) ? value : undefined);
      });
      continue;
    }
    throw new PatternError(
      at,
      `must be a list of matchers or a nested pattern, got ${JSON.stringify(spec)} (write ["${String(spec)}"]).`,
    );
  }
  return (event) => parts.every((part) => part(event));
}

/** Compiles an EventBridge event pattern; throws a `PatternError` naming the bad part. */
export function compilePattern(pattern: unknown): EventPattern {
  if (!isObject(pattern)) throw new PatternError("", `must be a JSON object, got ${JSON.stringify(pattern)}.`);
  const node = compileObject(pattern as Record<string, Json>, "");
  return { source: pattern, test: (event) => node(event as Json) };
}
