import { TTL_ATTRIBUTE, ternTableDefinition } from "@tern/backend-dynamodb";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

/** Props of {@link FlowBucket}. */
export interface FlowBucketProps {
  /** Noncurrent versions (replaced or deleted flow objects) expire after this many days. @default 90 */
  readonly noncurrentVersionDays?: number;
  /** Server access logs go to this bucket, if given. @default none */
  readonly accessLogsBucket?: s3.IBucket;
}

/**
 * The bucket of flow bundles and manifests: encrypted (SSE-S3), public access blocked, TLS
 * enforced, versioned (content-addressed objects are never overwritten; versions guard against
 * deletes), with a lifecycle rule for old noncurrent versions.
 */
export class FlowBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: FlowBucketProps = {}) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: "expire-old-noncurrent-versions",
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays ?? 90),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      ...(props.accessLogsBucket === undefined
        ? {}
        : { serverAccessLogsBucket: props.accessLogsBucket, serverAccessLogsPrefix: "tern-flows/" }),
      // Flows are the team's code: a stack deletion keeps them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

/** Props of {@link StateTable}. */
export interface StateTableProps {
  /** @default true */
  readonly deletionProtection?: boolean;
}

/**
 * The state table of the DynamoDB backend: on-demand, point-in-time recovery, TTL on
 * `expiresAt`, the backend's global secondary indexes (taken from `ternTableDefinition`, so the
 * stack and the backend cannot disagree), deletion protection on by default.
 */
export class StateTable extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: StateTableProps = {}) {
    super(scope, id);
    const definition = ternTableDefinition("unused");
    const attribute = (name: string) => ({ name, type: dynamodb.AttributeType.STRING });
    const [pk, sk] = (definition.KeySchema ?? []).map((k) => k.AttributeName as string);
    this.table = new dynamodb.TableV2(this, "Table", {
      partitionKey: attribute(pk as string),
      sortKey: attribute(sk as string),
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TTL_ATTRIBUTE,
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: RemovalPolicy.RETAIN,
      globalSecondaryIndexes: (definition.GlobalSecondaryIndexes ?? []).map((index) => {
        const [ipk, isk] = (index.KeySchema ?? []).map((k) => k.AttributeName as string);
        const projection = index.Projection;
        return {
          indexName: index.IndexName as string,
          partitionKey: attribute(ipk as string),
          sortKey: attribute(isk as string),
          ...(projection?.ProjectionType === "INCLUDE"
            ? { projectionType: dynamodb.ProjectionType.INCLUDE, nonKeyAttributes: projection.NonKeyAttributes ?? [] }
            : { projectionType: dynamodb.ProjectionType.KEYS_ONLY }),
        };
      }),
    });
  }
}
