import {
  registerBackendScheme,
  registerDeploymentOutputReader,
  registerDeploymentReconciler,
  registerEnvironmentLoader,
  registerStorageLoader,
} from "@tern/core/plugin";

// tern pins SDK versions that support the Node it runs on; the SDK's notice about future Node
// support would otherwise be printed by every command that touches S3.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

// Cloud and Git storages load their SDK only when a flow stored there is used.
registerStorageLoader("S3Storage", () => import("@tern/storage-cloud/s3"));
registerStorageLoader("GCSStorage", () => import("@tern/storage-cloud/gcs"));
registerStorageLoader("AzureStorage", () => import("@tern/storage-cloud/azure"));
registerStorageLoader("GitStorage", () => import("@tern/storage-git"));
registerStorageLoader("DockerStorage", () => import("@tern/storage-docker"));
// FargateTaskEnvironment (and the sweep's view of ECS tasks) loads the ECS SDK only when a flow
// or a run uses it.
registerEnvironmentLoader("FargateTaskEnvironment", () => import("@tern/env-fargate"));
registerDeploymentReconciler("ecs-task", async () => (await import("@tern/env-fargate")).reconcileEcsTasks);
registerDeploymentOutputReader("ecs-task", async () => (await import("@tern/env-fargate")).readTaskOutput);
// Likewise the DynamoDB backend, only when TERN_BACKEND names a dynamodb:// table.
registerBackendScheme("dynamodb", async (url) => {
  const { DynamoDbBackend, parseDynamoDbUrl } = await import("@tern/backend-dynamodb");
  return DynamoDbBackend.open(parseDynamoDbUrl(url));
});
