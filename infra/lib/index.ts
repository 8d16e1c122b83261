/**
 * `@tern/infra`: tern's serverless setup on AWS as CDK constructs. `new TernStack(app, "Tern")`
 * deploys all of it; the constructs compose it in a stack of your own.
 */
export { parseConfig, type TernConfig, TernConfigError } from "./config.js";
export {
  DEFAULT_FLOW_IMAGE_MAX_COUNT,
  DEFAULT_UNTAGGED_IMAGE_DAYS,
  ECR_PULL_ACTIONS,
  ECR_PUSH_ACTIONS,
  FlowImages,
  type FlowImagesProps,
  grantFlowImagePull,
  grantFlowImageRead,
} from "./flow-images.js";
export { TernHandlers, type TernHandlersProps } from "./handlers.js";
export {
  type BuildImageOptions,
  DEFAULT_CACHE_PREFIX,
  type RunnerBundle,
  type RunnerImage,
  type RunnerSource,
  STOCK_NODE_IMAGE,
  type StockImageOptions,
} from "./runner-image.js";
export {
  grantRunnerState,
  grantStorageSecrets,
  RUNNER_PARTITIONS,
  TernNetwork,
  type TernNetworkProps,
  TernRunner,
  type TernRunnerProps,
  type VpcSpec,
} from "./runtime.js";
export { TernStack, type TernStackProps } from "./stack.js";
export { FlowBucket, type FlowBucketProps, StateTable, type StateTableProps } from "./storage.js";
