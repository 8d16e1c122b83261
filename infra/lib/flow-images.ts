import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as ecr from "aws-cdk-lib/aws-ecr";
import * as iam from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

/** Tagged flow images kept by default: the most recently pushed ones; older ones expire. */
export const DEFAULT_FLOW_IMAGE_MAX_COUNT = 1000;

/** Days an untagged image (a tag that moved, an abandoned push) is kept by default. */
export const DEFAULT_UNTAGGED_IMAGE_DAYS = 1;

/** What pulling an image takes on its repository (a manifest, its blobs, a blob's existence). */
export const ECR_PULL_ACTIONS = [
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
  "ecr:BatchCheckLayerAvailability",
] as const;

/**
 * What `tern register` takes on the repository to push a flow image: blob uploads (a mount from
 * another repository of the registry starts as an upload too), the manifest, and pulls (the
 * existing tag's manifest, blobs' existence).
 */
export const ECR_PUSH_ACTIONS = [
  "ecr:BatchCheckLayerAvailability",
  "ecr:InitiateLayerUpload",
  "ecr:UploadLayerPart",
  "ecr:CompleteLayerUpload",
  "ecr:PutImage",
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
] as const;

/** A private ECR repository's ARN (IAM grants name repositories by ARN). */
export const ECR_REPOSITORY_ARN = /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9][a-z0-9._/-]*$/;

/** Props of {@link FlowImages}. */
export interface FlowImagesProps {
  /**
   * Tagged images kept: when there are more, the oldest pushed expire (ECR's lifecycle policy
   * counts by push date, not by use). `false` keeps every tagged image until you delete it.
   *
   * A tern version names its image by digest, and an expired image cannot run again: a version
   * whose image expired fails at the image pull. An unchanged flow is never pushed again, so its
   * image ages with every other flow's registration: choose a count well above the number of
   * images the repository's current versions use.
   * @default 1000
   */
  readonly maxImageCount?: number | false;
  /** Days an untagged image is kept (an image whose tag moved, or a push that never got its tag). @default 1 */
  readonly untaggedImageDays?: number;
}

/**
 * The ECR repository of flow images (`DockerStorage`): `tern register` pushes each flow version
 * as an image here, the version records it by digest, and `FargateTaskEnvironment` runs it.
 * Scan on push, AES-256 encryption, mutable tags (see below), a lifecycle policy (untagged images
 * expire after a day; tagged ones beyond `maxImageCount`, oldest pushed first), and retained when
 * the stack is deleted, like the flow bucket: its images are flow versions.
 *
 * Grants: {@link grantPull} (the execution role: the image by digest), {@link grantRead} (what
 * loads flows: the image's flow layer), {@link pushStatements} (CI, as policy statements).
 */
export class FlowImages extends Construct {
  readonly repository: ecr.Repository;

  constructor(scope: Construct, id: string, props: FlowImagesProps = {}) {
    super(scope, id);
    const maxImageCount = props.maxImageCount ?? DEFAULT_FLOW_IMAGE_MAX_COUNT;
    if (maxImageCount !== false && !(Number.isInteger(maxImageCount) && maxImageCount >= 1)) {
      throw new Error(
        `FlowImages maxImageCount: ${JSON.stringify(maxImageCount)} is not a count of images: use a whole number of 1 or more, or false to keep every tagged image.`,
      );
    }
    const untaggedImageDays = props.untaggedImageDays ?? DEFAULT_UNTAGGED_IMAGE_DAYS;
    if (!(Number.isInteger(untaggedImageDays) && untaggedImageDays >= 1)) {
      throw new Error(
        `FlowImages untaggedImageDays: ${JSON.stringify(untaggedImageDays)} is not a number of days: use a whole number of 1 or more.`,
      );
    }
    this.repository = new ecr.Repository(this, "Repository", {
      // Basic scanning of each pushed image, the repository's own setting (a registry-level
      // scanning configuration, such as enhanced scanning, is the account's to set).
      imageScanOnPush: true,
      // AES-256 (ECR's default, said here): ECR mounts a blob from another repository of the
      // registry only when both use the same encryption type and key, and base images are
      // usually AES-256 too.
      encryption: ecr.RepositoryEncryption.AES_256,
      // Mutable on purpose. tern's tags are content-derived: a tag pushed again is the same
      // manifest. With IMMUTABLE tags ECR refuses that re-push all the same (TAG_INVALID on the
      // Distribution API, ImageTagAlreadyExistsException from PutImage: aws/containers-roadmap#2380),
      // so a retried registration, or two CI jobs registering the same flow at once, would fail
      // instead of finding the image there. Versions name images by digest, which no tag can move.
      imageTagMutability: ecr.TagMutability.MUTABLE,
      lifecycleRules: [
        {
          rulePriority: 1,
          description: `tern: untagged images (a moved tag, an abandoned push) expire after ${untaggedImageDays === 1 ? "a day" : `${untaggedImageDays} days`}`,
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(untaggedImageDays),
        },
        ...(maxImageCount === false
          ? []
          : [
              {
                rulePriority: 2,
                description: `tern: only the ${maxImageCount} most recently pushed tagged images are kept; a version whose image expired cannot run`,
                tagStatus: ecr.TagStatus.TAGGED,
                tagPatternList: ["*"],
                maxImageCount,
              },
            ]),
      ],
      // Flow images are the team's code, as the flow bucket's objects are: a stack deletion keeps them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CDK leaves AES-256 out of the template (CloudFormation's default): said explicitly, it is
    // what a reader of the template, and a test, can see.
    (this.repository.node.defaultChild as ecr.CfnRepository).encryptionConfiguration = { encryptionType: "AES256" };
  }

  /** The repository's URI, `<account>.dkr.ecr.<region>.<suffix>/<name>`: `DockerStorage`'s registry and repository. */
  get repositoryUri(): string {
    return this.repository.repositoryUri;
  }

  /** Lets `grantee` pull flow images: see {@link grantFlowImagePull}. */
  grantPull(grantee: iam.IGrantable): void {
    grantFlowImagePull(grantee, this.repository);
  }

  /** Lets `grantee` read flow images' manifests and blobs: see {@link grantFlowImageRead}. */
  grantRead(grantee: iam.IGrantable): void {
    grantFlowImageRead(grantee, this.repository);
  }

  /**
   * What CI needs to push flow images, as statements for a managed policy: the token, pushes
   * and pulls on this repository ({@link ECR_PUSH_ACTIONS}), and pulls on the base images'
   * repositories named (to read a base in this registry, and to mount its blobs instead of
   * uploading them).
   */
  pushStatements(baseRepositoryArns: readonly string[] = []): iam.PolicyStatement[] {
    for (const arn of baseRepositoryArns) {
      if (!ECR_REPOSITORY_ARN.test(arn)) {
        throw new Error(
          `FlowImages base repositories: ${JSON.stringify(arn)} is not an ECR repository ARN (e.g. "arn:aws:ecr:eu-west-1:123456789012:repository/acme/node-base").`,
        );
      }
    }
    return [
      new iam.PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
      new iam.PolicyStatement({ actions: [...ECR_PUSH_ACTIONS], resources: [this.repository.repositoryArn] }),
      ...(baseRepositoryArns.length === 0
        ? []
        : [new iam.PolicyStatement({ actions: [...ECR_PULL_ACTIONS], resources: [...baseRepositoryArns] })]),
    ];
  }
}

/**
 * Lets `grantee` pull images of `repository` (what ECS's execution role does to start a task from
 * a flow image): {@link ECR_PULL_ACTIONS} on that repository, and `ecr:GetAuthorizationToken`,
 * which takes no resource (`*`).
 */
export function grantFlowImagePull(grantee: iam.IGrantable, repository: ecr.IRepository): void {
  grantOnRepository(grantee, repository, [...ECR_PULL_ACTIONS]);
}

/**
 * Lets `grantee` read manifests and blobs of `repository` (what loading a Docker-stored flow's
 * manifest does: the image's flow layer): `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` on
 * that repository, and `ecr:GetAuthorizationToken` (`*`).
 */
export function grantFlowImageRead(grantee: iam.IGrantable, repository: ecr.IRepository): void {
  grantOnRepository(grantee, repository, ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]);
}

function grantOnRepository(grantee: iam.IGrantable, repository: ecr.IRepository, actions: string[]): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions, resources: [repository.repositoryArn] }),
  );
  // Identical statements are rendered once: a role that already logs in to ECR gets no second one.
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
  );
}
