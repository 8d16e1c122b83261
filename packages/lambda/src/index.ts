/**
 * `@tern/lambda`: tern's Lambda handlers, built on core, the DynamoDB backend, S3 storage and the
 * Fargate environment. Each handler is its own entry (`@tern/lambda/handlers/<name>`) so that
 * each bundles alone: `agent` (scheduled), `task-state` (ECS task-state events), `trigger`
 * (EventBridge events), `cloudevents` (CloudEvents over HTTP).
 */
export { ConfigError, type ConfigNeeds, type LambdaConfig, loadConfig } from "./config.js";
export { compilePattern, type EventPattern, PatternError } from "./pattern.js";
export {
  matchingRules,
  parseRules,
  pick,
  RulesError,
  ruleParameters,
  type TriggerRule,
  type TriggerRuleInput,
} from "./rules.js";
export { checkSignature, SIGNATURE_HEADER, signedText, signRequest } from "./signature.js";
