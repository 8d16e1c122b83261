/**
 * Labels decide which agent picks up a run: an agent takes a run only if the agent's labels
 * include all of the run's labels, and a run without labels only goes to an agent without
 * labels. A run's labels come from its flow's environment (or `tern run --labels`).
 *
 *   pnpm tern register examples/labels.ts
 *   pnpm tern run labeled-dev          # labels: dev
 *   pnpm tern agent --once             # no labels: does not take it
 *   pnpm tern why <run id>             # says which labels are missing
 *   pnpm tern agent --once --labels dev,staging   # takes it
 */
import { Flow, LocalEnvironment, task } from "@tern/core";

export const ping = task("ping", () => "pong");

/** Runs only on agents that have at least the label "dev". */
export const devFlow = new Flow("labeled-dev", { environment: new LocalEnvironment({ labels: ["dev"] }) }, () => ({
  reply: ping(),
}));

/** Has no labels: runs only on agents that have no labels either. */
export const unlabeledFlow = new Flow("unlabeled", {}, () => ({ reply: ping() }));
